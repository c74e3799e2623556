// The broker's refusals: an HTTP status plus a stable code the client and CLI
// can print or match on.
import { RoamError } from '../util/errors.js';
export class BrokerError extends RoamError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(code, message, { kind: status >= 500 ? 'peer' : 'refused' });
  }
}
