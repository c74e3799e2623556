// A fetch-based client for the broker's HTTP API; refusals become BrokerError
// with the broker's code, so callers can tell them apart.
import { BrokerError } from './errors.js';
import type { Limits } from './ledger.js';

export interface BuyOptions extends Partial<Limits> {
  customer: string;
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

export class BrokerClient {
  private readonly base: string;
  constructor(url: string) {
    this.base = url.replace(/\/+$/, '');
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers: body ? { 'content-type': 'application/json' } : {},
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
    return this.call<{ id: string; balance: number }>('POST', '/v1/customers', { id, balance });
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
