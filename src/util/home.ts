import os from 'node:os';
import path from 'node:path';

/** Where roam keeps its state: the module cache, VM registry and keys. */
export const roamHome = (): string => process.env.ROAM_HOME ?? path.join(os.homedir(), '.roam');
