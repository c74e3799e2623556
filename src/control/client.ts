// A fetch-based client of the control service, for the CLI and the agent.
// Refusals become ControlError with the service's code.
import { ControlError } from './workload.js';
import type { NodeView, Report } from './service.js';

export interface Fetched {
  view: NodeView;
  /** H(s) of the next change of this description, and where to subscribe to it. */
  h: string;
  rendezvous: string[];
}

export class ControlClient {
  private readonly base: string;
  constructor(
    url: string,
    private readonly key: string,
    private readonly timeoutMs = 10_000,
  ) {
    this.base = url.replace(/\/+$/, '');
  }

  private async raw(
    method: string,
    path: string,
    body?: Buffer | string,
    headers: Record<string, string> = {},
  ): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers: { authorization: `Bearer ${this.key}`, ...headers },
        body: typeof body === 'string' || body === undefined ? body : new Uint8Array(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      const c = (e as Error).cause;
      const why = c instanceof Error ? c.message : (e as Error).message;
      throw new ControlError(
        599,
        'unreachable',
        `control service ${this.base} unreachable: ${why}`,
      );
    }
    if (res.ok || res.status === 304) return res;
    const data = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
    throw new ControlError(
      res.status,
      data.error ?? 'http-error',
      data.message ?? `HTTP ${res.status}`,
    );
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(
      method,
      path,
      body === undefined ? undefined : JSON.stringify(body),
      body === undefined ? {} : { 'content-type': 'application/json' },
    );
    return (await res.json()) as T;
  }

  addCustomer(id: string) {
    return this.call<{ id: string; key: string }>('POST', '/v1/customers', { id });
  }
  addNode(id: string) {
    return this.call<{ id: string; key: string }>('POST', '/v1/nodes', { id });
  }
  async putProgram(bytes: Buffer) {
    const res = await this.raw('POST', '/v1/programs', bytes, {
      'content-type': 'application/wasm',
    });
    return (await res.json()) as { sha256: string; bytes: number };
  }
  async program(sha256: string): Promise<Buffer> {
    return Buffer.from(await (await this.raw('GET', `/v1/programs/${sha256}`)).arrayBuffer());
  }
  submit(description: unknown) {
    return this.call<{ version: number; nodes: string[] }>('POST', '/v1/workloads', description);
  }
  workload(name: string) {
    return this.call<{
      description: unknown;
      versions: number[];
      instances: Array<{
        index: number;
        node: string;
        jobId: string;
        state: string;
        spec: number;
        from: string | null;
      }>;
    }>('GET', `/v1/workloads/${encodeURIComponent(name)}`);
  }
  /** This node's description; null if it is still `etag`'s. */
  async node(version?: number): Promise<Fetched | null> {
    const res = await this.raw(
      'GET',
      '/v1/node',
      undefined,
      version === undefined ? {} : { 'if-none-match': `"${version}"` },
    );
    if (res.status === 304) return null;
    const view = (await res.json()) as NodeView;
    const rv = res.headers.get('roam-pulse-rendezvous') ?? '';
    return {
      view,
      h: res.headers.get('roam-pulse') ?? '',
      rendezvous: rv.split(',').filter(Boolean),
    };
  }
  async report(reports: Report[]): Promise<void> {
    await this.call('POST', '/v1/node/reports', { reports });
  }
}
