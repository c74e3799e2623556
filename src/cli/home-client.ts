// The CLI's client of `roam home`'s API: the address and credential come from the
// state file home wrote ($ROAM_HOME/home.json unless --home-file says otherwise).
import fs from 'node:fs';
import path from 'node:path';
import { RoamError, type ErrorKind } from '../util/errors.js';
import { roamHome } from '../util/home.js';

export const HOME_FILE = [
  '--home-file <file>',
  "home's state file (written by roam home)",
] as const;

/** Job ids are `j` and ten hex digits (VM ids are twelve hex digits). */
export const isJobId = (ref: string): boolean => /^j[0-9a-f]{10}$/.test(ref);

export async function homeCall<T>(
  method: 'GET' | 'POST',
  route: string,
  body?: unknown,
  file = path.join(roamHome(), 'home.json'),
): Promise<T> {
  let st: { api: string; credential: string };
  try {
    st = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof st;
  } catch (err) {
    throw new RoamError(
      'no-home',
      `cannot read home's state file ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): start \`roam home\` first, or pass --home-file FILE`,
      { kind: 'usage' },
    );
  }
  let res: Response;
  try {
    res = await fetch(st.api + route, {
      method,
      headers: { authorization: `Bearer ${st.credential}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    const why = ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message;
    throw new RoamError(
      'home-unreachable',
      `home ${st.api} unreachable: ${why} (is roam home running?)`,
      {
        kind: 'peer',
      },
    );
  }
  const data = (await res.json().catch(() => ({}))) as T & { error?: string; message?: string };
  if (!res.ok) {
    const kind: ErrorKind =
      res.status === 400
        ? 'usage'
        : res.status === 409
          ? 'refused'
          : res.status === 504
            ? 'timeout'
            : 'peer';
    throw new RoamError(
      data.error ?? 'home-error',
      `home: ${data.message ?? `HTTP ${res.status}`}`,
      { kind },
    );
  }
  return data;
}
