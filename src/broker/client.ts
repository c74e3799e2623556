// A fetch-based client for the broker's HTTP API; refusals become BrokerError
// with the broker's code, so callers can tell them apart.
import { readFileSync, statSync } from 'node:fs';
import { BrokerError } from './errors.js';
import type { Limits } from './ledger.js';

export interface BuyOptions extends Partial<Limits> {
  customer?: string; // the credential's own account; another is refused
  node: string;
  count: number;
  loaderSha256?: string;
  ttlS?: number;
}
/** `key`: hex, the job VM's key (for `roam run --to` and the VM's own checkpoints). */
export interface Bought {
  jobId: string;
  node: string;
  units: number;
  expiry: number;
  cost: number;
  balance: number;
  token: Buffer;
  key: string;
}
export interface ToppedUp {
  jobId: string;
  units: number;
  released: number;
  element: string;
  cost: number;
  balance: number;
  message: Buffer;
}
export interface Redeemed {
  jobId: string;
  certId: string;
  units: number;
  amount: number;
  balance: number;
}
export interface JobInfo {
  jobId: string;
  customer: string;
  node: string;
  length: number;
  released: number;
  expiry: number;
  refunded: boolean;
  element: string;
}

/** A credential file (the admin's, or a customer's from add-customer): refused if others may read it. */
export function readKeyFile(file: string, flag: string): string {
  let text: string;
  try {
    if (statSync(file).mode & 0o077)
      throw new BrokerError(
        0,
        'key-file-mode',
        `${flag} ${file} is readable by others: chmod 600 ${file}`,
      );
    text = readFileSync(file, 'utf8').trim();
  } catch (e) {
    if (e instanceof BrokerError) throw e;
    throw new BrokerError(0, 'no-key-file', `${flag} ${file}: ${(e as Error).message}`);
  }
  if (!/^(admin|customer):[A-Za-z0-9._-]{1,64}:[0-9a-f]{64}$/.test(text))
    throw new BrokerError(0, 'bad-key-file', `${flag} ${file} does not hold a broker credential`);
  return text;
}

export class BrokerClient {
  private readonly base: string;
  /** `credential`: ROLE:ID:SECRET, sent as a bearer token with every request. */
  constructor(
    url: string,
    private readonly credential?: string,
  ) {
    this.base = url.replace(/\/+$/, '');
  }
  /** The customer (or admin) id of this client's credential. */
  get who(): string | undefined {
    return this.credential?.split(':')[1];
  }
  as(credential: string): BrokerClient {
    return new BrokerClient(this.base, credential);
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers: {
          ...(body ? { 'content-type': 'application/json' } : {}),
          ...(this.credential ? { authorization: `Bearer ${this.credential}` } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
    } catch (e) {
      throw new BrokerError(
        0,
        'unreachable',
        `broker ${this.base} unreachable: ${(e as Error).cause ?? (e as Error).message}`,
      );
    }
    const data = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
    if (!res.ok)
      throw new BrokerError(
        res.status,
        data.error ?? 'http-error',
        data.message ?? `HTTP ${res.status}`,
      );
    return data as T;
  }

  enrollNode(id: string, price?: number) {
    return this.call<{ id: string; secret: string; price: number }>('POST', '/v1/nodes', {
      id,
      price,
    });
  }
  addCustomer(id: string, balance?: number) {
    return this.call<{ id: string; balance: number; key: string }>('POST', '/v1/customers', {
      id,
      balance,
    });
  }
  deposit(id: string, amount: number) {
    return this.call<{ id: string; balance: number }>(
      'POST',
      `/v1/customers/${encodeURIComponent(id)}/deposit`,
      { amount },
    );
  }
  customer(id: string) {
    return this.call<{ id: string; balance: number }>(
      'GET',
      `/v1/customers/${encodeURIComponent(id)}`,
    );
  }
  job(jobId: string) {
    return this.call<JobInfo>('GET', `/v1/jobs/${jobId}`);
  }

  async buy(o: BuyOptions): Promise<Bought> {
    const r = await this.call<Omit<Bought, 'token'> & { token: string }>('POST', '/v1/tokens', o);
    return { ...r, token: Buffer.from(r.token, 'base64') };
  }

  async topup(jobId: string, count: number): Promise<ToppedUp> {
    const r = await this.call<Omit<ToppedUp, 'message'> & { message: string }>(
      'POST',
      `/v1/jobs/${jobId}/topup`,
      { count },
    );
    return { ...r, message: Buffer.from(r.message, 'base64') };
  }

  redeem(certificate: Buffer) {
    return this.call<Redeemed>('POST', '/v1/redemptions', {
      certificate: certificate.toString('base64'),
    });
  }
}
