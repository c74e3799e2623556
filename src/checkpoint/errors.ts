// Refusals of the checkpoint machinery a user sees.
import { RoamError } from '../util/errors.js';

/** The VM's programs all exited before the freeze: there is nothing to checkpoint. */
export class VmExited extends RoamError {
  constructor() {
    super(
      'vm-exited',
      'the program exited while the checkpoint was being taken, so there is nothing to resume; no checkpoint was written',
    );
  }
}
