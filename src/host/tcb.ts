// Counts the node's trusted computing base: every module in src/host that the
// daemon may load, plus what those import from src/tokens, without blank and
// comment lines. DESIGN §3 caps it at 400 lines (the thesis' C control plane).
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

// Host-side tools that the daemon never imports (tests check this stays true).
export const NOT_PRIVILEGED = new Set(['tcb.ts', 'client.ts']);

export function codeLines(source: string): number {
  let n = 0,
    inBlock = false;
  for (const raw of source.split('\n')) {
    let line = raw.trim();
    if (inBlock) {
      const end = line.indexOf('*/');
      if (end < 0) continue;
      inBlock = false;
      line = line.slice(end + 2).trim();
    }
    while (line.startsWith('/*')) {
      const end = line.indexOf('*/', 2);
      if (end < 0) {
        inBlock = true;
        line = '';
        break;
      }
      line = line.slice(end + 2).trim();
    }
    if (line !== '' && !line.startsWith('//')) n++;
  }
  return n;
}

// Relative imports of a module, resolved to .ts source files.
export function localImports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(/(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]/g)) {
    const target = resolve(dirname(file), m[1].replace(/\.js$/, '.ts'));
    if (existsSync(target)) out.push(target);
  }
  return out;
}

export function tcbFiles(rootDir: string): string[] {
  const host = join(rootDir, 'src', 'host');
  const todo = readdirSync(host)
    .filter((f) => f.endsWith('.ts') && !NOT_PRIVILEGED.has(f))
    .map((f) => join(host, f));
  const seen = new Set<string>();
  while (todo.length) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    todo.push(...localImports(f));
  }
  return [...seen].map((f) => relative(rootDir, f)).sort();
}

export function countTcbLines(rootDir: string): { total: number; files: Record<string, number> } {
  const files: Record<string, number> = {};
  for (const f of tcbFiles(rootDir)) files[f] = codeLines(readFileSync(join(rootDir, f), 'utf8'));
  return { total: Object.values(files).reduce((a, b) => a + b, 0), files };
}
