// The README test: every fenced shell block of README.md is run, in order, as a
// newcomer would type it, so the README cannot go stale. Conventions (the README
// is written to them):
//
// - All blocks run in one bash session, in a fresh folder holding `examples` (a
//   link to the repository's), with `roam` a function for `node bin/roam.js` and
//   ROAM_HOME inside the folder. Shell variables carry over (VM=$(roam run ...)).
// - Each command must exit 0; the first that does not fails the test, with its output.
// - A command ending in `&` runs in the background (a broker, a node, a cstrap, a
//   home, a restored VM); the test waits until it prints a line saying it is
//   listening, running, restored or arrived, and ends it when the test ends.
// - `<!-- readme-test: skip (why) -->` on the line before a fence skips that block
//   (the Quick start's `npm start` and `npm test`, which CI runs anyway). Nothing
//   else is skipped.
// - Ports written as :7000-:7999 are replaced by free ones (the same port each
//   time it appears), since tests never bind fixed ports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, HOME, ROAM, ROOT, tmpdir, track } from '../helpers.js';

interface Block {
  line: number;
  commands: string[];
}

/** The README's fenced sh/bash blocks, less the skipped ones, each as its commands. */
export function shellBlocks(markdown: string): { run: Block[]; skipped: number[] } {
  const lines = markdown.split('\n');
  const run: Block[] = [],
    skipped: number[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(sh|bash|shell)\s*$/.test(lines[i])) continue;
    const skip = i > 0 && /<!--\s*readme-test:\s*skip\b/.test(lines[i - 1]);
    const start = i + 1;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i].startsWith('```'); i++) body.push(lines[i]);
    if (skip) skipped.push(start);
    else run.push({ line: start, commands: joinContinued(body) });
  }
  return { run, skipped };
}

/** Lines ending in a backslash continue on the next; blank and comment-only lines go. */
function joinContinued(body: string[]): string[] {
  const out: string[] = [];
  let cur = '';
  for (const l of body) {
    cur = cur ? `${cur} ${l.trim()}` : l;
    if (cur.endsWith('\\')) cur = cur.slice(0, -1);
    else {
      if (cur.trim() && !cur.trim().startsWith('#')) out.push(cur.trim());
      cur = '';
    }
  }
  return out;
}

/** A command's trailing `# comment`, outside quotes, removed. */
export function stripComment(cmd: string): string {
  let q: string | null = null;
  for (let i = 0; i < cmd.length; i++) {
    const c = cmd[i];
    if (q) {
      if (c === q) q = null;
    } else if (c === '"' || c === "'") q = c;
    else if (c === '#' && (i === 0 || /\s/.test(cmd[i - 1]))) return cmd.slice(0, i).trimEnd();
  }
  return cmd.trimEnd();
}

const q = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`;

/** The bash script that runs `blocks`: each command reported, background ones waited for. */
function script(blocks: Block[], ports: Map<string, number>): string {
  const out = [
    'set -u',
    `roam() { ${q(process.execPath)} ${q(ROAM)} "$@"; }`,
    'BG=""',
    // Waits until a background command says it is up, or fails if it ends first.
    'up() { for _ in $(seq 1200); do grep -qE "listening|running|restored|arrived" "$1" && return 0;' +
      ' kill -0 "$2" 2>/dev/null || { cat "$1"; return 1; }; sleep 0.1; done; cat "$1"; return 1; }',
  ];
  let n = 0;
  for (const b of blocks)
    for (const raw of b.commands) {
      n++;
      let cmd = stripComment(raw).replace(/:(7\d{3})\b/g, (_m, p: string) => `:${ports.get(p)}`);
      out.push(`echo "::run ${n} README.md:${b.line}:" ${q(raw)} >&2`);
      if (cmd.endsWith('&')) {
        cmd = cmd.slice(0, -1).trimEnd();
        out.push(`( ${cmd} ) > .bg-${n}.log 2>&1 & BG="$BG $!"`);
        out.push(`up .bg-${n}.log $! >&2 || { echo "::fail ${n}" >&2; exit 100; }`);
      } else
        out.push(
          `${cmd}`,
          `rc=$?; [ $rc -eq 0 ] || { echo "::fail ${n} exit $rc" >&2; exit 100; }`,
        );
    }
  out.push('echo "::all-done" >&2');
  return out.join('\n') + '\n';
}

test('every command in README.md runs as written', { timeout: 900_000 }, async () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const { run } = shellBlocks(readme);
  assert.ok(run.length >= 4, 'the README has its walk-throughs');
  const dir = tmpdir('readme');
  fs.symlinkSync(path.join(ROOT, 'examples'), path.join(dir, 'examples'));
  const home = path.join(dir, '.roam');
  fs.mkdirSync(home);
  // Prepared modules from the test run's cache: preparing each example again is not the README's business.
  fs.mkdirSync(path.join(HOME, 'cache'), { recursive: true });
  fs.symlinkSync(path.join(HOME, 'cache'), path.join(home, 'cache'));
  const ports = new Map<string, number>();
  for (const m of readme.matchAll(/:(7\d{3})\b/g))
    if (!ports.has(m[1])) ports.set(m[1], await freePort());
  fs.writeFileSync(path.join(dir, 'readme.sh'), script(run, ports));
  const sh = spawn('bash', ['readme.sh'], {
    cwd: dir,
    env: { ...process.env, ROAM_HOME: home },
    detached: true, // its own process group: the background commands end with it
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(sh);
  let log = '';
  sh.stdout.on('data', (d: Buffer) => (log += d.toString()));
  sh.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const code = await new Promise<number>((r) => sh.on('close', (c) => r(c ?? 128)));
  try {
    const failed = /::fail (\d+)/.exec(log);
    const cmd = failed ? new RegExp(`::run ${failed[1]} `).exec(log) : null;
    assert.equal(
      code,
      0,
      `${failed ? `command ${failed[1]} failed` : 'the script failed'}:\n${log.slice(cmd?.index ?? -4000)}`,
    );
    assert.match(log, /::all-done/);
    const total = run.reduce((n, b) => n + b.commands.length, 0);
    assert.equal((log.match(/^::run \d+ /gm) ?? []).length, total, 'every command ran');
    console.log(`README.md: ${total} commands in ${run.length} blocks ran`);
  } finally {
    // Background commands (and the VMs they started) end with the test, pass or fail.
    try {
      process.kill(-sh.pid!, 'SIGTERM');
    } catch {
      // already gone
    }
    await stopVms(home, dir);
  }
});

/** Ends the detached VMs and those a node started, found by their control sockets. */
async function stopVms(home: string, dir: string): Promise<void> {
  const homes = [home, ...listDirs(path.join(dir, 'node-state'))];
  for (const h of homes)
    for (const f of listFiles(path.join(h, 'vms'))) {
      const pid = Number(/-(\d+)\.(sock|json)$/.exec(f)?.[1]);
      if (pid > 0)
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
    }
  await new Promise((r) => setTimeout(r, 200));
}

const listFiles = (d: string): string[] => (fs.existsSync(d) ? fs.readdirSync(d) : []);
const listDirs = (d: string): string[] =>
  listFiles(d)
    .map((f) => path.join(d, f))
    .filter((f) => fs.statSync(f).isDirectory());
