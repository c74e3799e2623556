// The broker's refusals: an HTTP status plus a stable code the client and CLI
// can print or match on.
export class BrokerError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'BrokerError';
  }
}
