import { InvalidArgumentError, type Command } from 'commander';
import { defaultKeyPath, loadKey, loadOrCreateKey } from '../../format/index.js';
import { bootHypercube, type HypercubeEvent } from '../../vm/hypercube.js';
import { durationMs, mib } from '../options.js';

interface Flags {
  from: string;
  to: string[];
  sha256?: string;
  key?: string;
  star?: boolean;
  timeout?: number;
  json?: boolean;
}

function sha256Hex(v: string): string {
  if (!/^[0-9a-f]{64}$/i.test(v))
    throw new InvalidArgumentError(
      'expected a SHA-256 as 64 hex digits (`roam run --pack` prints it).',
    );
  return v.toLowerCase();
}

function line(e: HypercubeEvent): string {
  if (e.event === 'told')
    return `node ${e.node} (${e.cstrap}): round ${e.round}, pulling from ${e.from}`;
  if (e.event === 'pulled')
    return `node ${e.node}: has the image (${mib(e.bytes)} in ${e.ms.toFixed(0)} ms, hash and MAC verified)${e.serving ? `, serving it at ${e.serving}` : ''}`;
  return `node ${e.node}: running (${(e.ms / 1000).toFixed(2)} s after the start)`;
}

export function register(program: Command): void {
  program
    .command('boot-hypercube')
    .description(
      'Boot one image on many empty cstraps: the first pulls it from its boot URI, and every node that has it serves it on (thesis 8.4)',
    )
    .requiredOption('--from <uri>', "the image's boot URI (`roam serve-image` prints it)")
    .requiredOption(
      '--to <cstraps...>',
      "the cstraps' upload addresses, HOST:PORT each (`roam cstrap --listen` prints it); the first is the root",
    )
    .option(
      '--sha256 <hex>',
      'boot only this image (default: the one the root pulled and verified)',
      sha256Hex,
    )
    .option(
      '--key <file>',
      'the key the cstraps and the image share (default: $ROAM_HOME/checkpoint.key)',
    )
    .option(
      '--star',
      'every cstrap pulls from --from at once (the topology hypercube boot is measured against)',
    )
    .option(
      '--timeout <duration>',
      'the longest one node may take to pull, and then to run (default 120s)',
      durationMs,
    )
    .option(
      '--json',
      'JSON lines on stderr for progress, and the result as one JSON object on stdout',
    )
    .addHelpText(
      'after',
      `
Node i (0-based, in the order given) that has the image serves node i | 2^d
for each dimension d above its highest bit, one after another; so the source
sends one copy and all N nodes have it after ceil(log2 N) rounds. Each cstrap is
told over its upload channel where to pull from, connects out and pulls; it
checks the image's SHA-256 (pinned by --sha256, or by what the root verified)
and its MAC before it boots a fresh VM from it. A node serves the image until
this command ends.

Example:
  roam run --pack app.img examples/bigmem.wasm 4 3
  roam serve-image app.img --listen 127.0.0.1:7300 &   # the source
  roam cstrap --listen 127.0.0.1:7101 &  ...           # N empty cstraps
  roam boot-hypercube --from http://127.0.0.1:7300/v1/image --to 127.0.0.1:7101 127.0.0.1:7102 ...`,
    )
    .action(async (o: Flags) => {
      const psk = o.key ? await loadKey(o.key) : await loadOrCreateKey(defaultKeyPath());
      const res = await bootHypercube({
        from: o.from,
        to: o.to,
        psk,
        sha256: o.sha256,
        star: o.star,
        stepTimeoutMs: o.timeout,
        onEvent: (e) =>
          process.stderr.write(o.json ? `${JSON.stringify(e)}\n` : `roam: ${line(e)}\n`),
      });
      if (o.json)
        return void process.stdout.write(`${JSON.stringify({ event: 'done', ...res })}\n`);
      process.stdout.write(
        `${res.nodes.length} VMs running after ${(res.totalMs / 1000).toFixed(2)} s (${res.topology}, ${res.rounds} rounds); the source was asked for ${res.fromSource} ${res.fromSource === 1 ? 'copy' : 'copies'}\n`,
      );
    });
}
