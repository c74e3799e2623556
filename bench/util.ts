// Printing a table and writing JSON, shared by the bench scripts.
import fs from 'node:fs';
import path from 'node:path';

export function table(rows: Array<Record<string, string | number>>): string {
  if (rows.length === 0) return '(no rows)';
  const cols = Object.keys(rows[0]);
  const cell = (v: string | number) =>
    typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : v;
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c] ?? '').length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(w[i]))
      .join('  ')
      .trimEnd();
  return [
    line(cols),
    line(w.map((n) => '-'.repeat(n))),
    ...rows.map((r) => line(cols.map((c) => cell(r[c] ?? '')))),
  ].join('\n');
}

export function writeJson(file: string, data: unknown): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(data, null, 1) + '\n');
}

/** `--json FILE` from argv, or a default under bench/out. */
export function jsonPath(name: string): string {
  const i = process.argv.indexOf('--json');
  return i >= 0 ? process.argv[i + 1] : path.join('bench', 'out', `${name}.json`);
}
