// Two network namespaces joined by a veth pair, each end shaped with tbf to a
// rate: the "real link" of the migration and home benches. Root and iproute2
// (`ip`, `tc`) are needed; setup() says why not otherwise.
import { execFileSync, spawn } from 'node:child_process';

export interface NsPair {
  a: string;
  b: string;
  /** Addresses of the ends: `${prefix}.1` in a, `${prefix}.2` in b. */
  prefix: string;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
export const inNs = (ns: string, ...cmd: string[]) =>
  execFileSync('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });

export function cleanup(p: NsPair): void {
  for (const ns of [p.a, p.b]) {
    try {
      ip('netns', 'del', ns);
    } catch {
      /* not there */
    }
  }
}

export function shape(p: NsPair, tcRate: string): void {
  for (const [ns, dev] of [
    [p.a, `${p.a}v`],
    [p.b, `${p.b}v`],
  ])
    inNs(
      ns,
      'tc',
      'qdisc',
      'replace',
      'dev',
      dev,
      'root',
      'tbf',
      'rate',
      tcRate,
      'burst',
      '256kb',
      'latency',
      '50ms',
    );
}

/** Create the pair and check that b is reachable from a; null if that works, else why not. */
export async function setup(p: NsPair, tcRate: string): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'not running as root';
  for (const tool of ['ip', 'tc']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `\`${tool}\` not found (install iproute2)`;
    }
  }
  try {
    cleanup(p);
    ip('netns', 'add', p.a);
    ip('netns', 'add', p.b);
    ip(
      'link',
      'add',
      `${p.a}v`,
      'netns',
      p.a,
      'type',
      'veth',
      'peer',
      'name',
      `${p.b}v`,
      'netns',
      p.b,
    );
    ip('-n', p.a, 'addr', 'add', `${p.prefix}.1/24`, 'dev', `${p.a}v`);
    ip('-n', p.b, 'addr', 'add', `${p.prefix}.2/24`, 'dev', `${p.b}v`);
    for (const [ns, dev] of [
      [p.a, `${p.a}v`],
      [p.b, `${p.b}v`],
    ]) {
      ip('-n', ns, 'link', 'set', dev, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    shape(p, tcRate);
    await reachable(p);
    return null;
  } catch (err) {
    const e = err as Error & { stderr?: Buffer };
    cleanup(p);
    return `${e.message.split('\n')[0]}${e.stderr?.length ? `: ${e.stderr.toString().trim()}` : ''}`;
  }
}

/** A listener in b, a connection from a. */
async function reachable(p: NsPair): Promise<void> {
  const srv = spawn('ip', [
    'netns',
    'exec',
    p.b,
    process.execPath,
    '-e',
    `require('net').createServer(c=>c.end('ok\\n')).listen(7399,'${p.prefix}.2',()=>console.log('up'))`,
  ]);
  try {
    await new Promise<void>((resolve, reject) => {
      srv.stdout.on('data', (d) => String(d).includes('up') && resolve());
      srv.on('exit', () => reject(new Error(`listener in ${p.b} exited`)));
      setTimeout(() => reject(new Error(`listener in ${p.b}: no answer`)), 10_000);
    });
    const got = inNs(
      p.a,
      process.execPath,
      '-e',
      `require('net').connect(7399,'${p.prefix}.2').on('data',d=>{process.stdout.write(d);process.exit(0)}).on('error',e=>{console.error(e.message);process.exit(1)})`,
    ).toString();
    if (!got.includes('ok')) throw new Error(`${p.a} -> ${p.b}: got "${got}"`);
  } finally {
    srv.kill('SIGKILL');
  }
}
