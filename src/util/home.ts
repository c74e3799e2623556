import os from 'node:os';
import path from 'node:path';

/**
 * Where roam keeps its state: the module cache, VM registry and keys. The one
 * place $ROAM_HOME is read; unset or empty means ~/.roam.
 */
export const roamHome = (env: NodeJS.ProcessEnv = process.env): string =>
  env.ROAM_HOME || path.join(os.homedir(), '.roam');
