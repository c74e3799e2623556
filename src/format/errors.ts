// Every refusal of a checkpoint is a CheckpointError, so that callers (restore,
// inspect, the migration receiver) can tell "bad input" apart from their own bugs
// and show the message as it is.
import { RoamError } from '../util/errors.js';
export type CheckpointErrorCode =
  | 'not-roam' // no roam magic at the start
  | 'truncated' // ended mid-record or before END
  | 'corrupted' // plain SHA-256 mismatch, or a structurally impossible record
  | 'tampered' // HMAC mismatch (modified, or the wrong key)
  | 'key-required' // signed checkpoint but no key given
  | 'unsigned' // a key was given but the checkpoint carries no HMAC
  | 'unknown-record' // unknown mandatory record type
  | 'unsupported' // format version, page size, page encoding we do not implement
  | 'too-large' // record payload above the limit
  | 'trailing' // bytes after END
  | 'verify-mismatch' // recomputed VERIFY differs
  | 'module-hash' // MODULE bytes do not match their hash
  | 'missing' // no HEADER / KERNEL / VERIFY
  | 'unreadable' // the file cannot be opened (missing, a directory, no permission)
  | 'not-a-file'; // an output path that is a device, directory or link, not a regular file

export class CheckpointError extends RoamError {
  declare readonly code: CheckpointErrorCode;
  constructor(code: CheckpointErrorCode, message: string) {
    super(code, message);
  }
}
