// One base for every refusal roam makes: a stable machine-readable `code` (what
// scripts match on; printed with the message, and in --json output) and a
// `kind` that decides the CLI's exit status. Components subclass it to add
// their own fields (an HTTP status, an errno), never a shape of their own.
export type ErrorKind = 'usage' | 'refused' | 'peer' | 'timeout' | 'internal';

/** `roam`'s exit statuses, documented in the README and `roam --help`. */
export const EXIT_CODES: Readonly<Record<ErrorKind, number>> = {
  internal: 1,
  usage: 2,
  refused: 3,
  peer: 4,
  timeout: 5,
};

export class RoamError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  constructor(code: string, message: string, o: { kind?: ErrorKind; cause?: unknown } = {}) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.name = new.target.name;
    this.code = code;
    this.kind = o.kind ?? 'refused';
  }
}

/** The code and kind of any thrown value (a foreign error is internal, or a usage error when commander says so). */
export function describeError(err: unknown): { code: string; kind: ErrorKind; message: string } {
  if (err instanceof RoamError) return { code: err.code, kind: err.kind, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  const sys = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof sys === 'string' && /^E[A-Z]+$/.test(sys))
    return { code: sys.toLowerCase(), kind: 'refused', message };
  return { code: 'error', kind: 'internal', message };
}

/** A caught value as an Error (JavaScript lets anything be thrown). */
export const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));
