import type { Command } from 'commander';
import { serveImageFile } from '../../vm/hypercube-source.js';
import { mib, positiveInt, rate } from '../options.js';

interface ServeFlags {
  listen: string;
  key?: string;
  copies?: number;
  maxBandwidth?: number;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('serve-image')
    .description(
      'Serve a boot image (`roam run --pack`, or any signed checkpoint) at a boot URI to cstraps that hold its key',
    )
    .argument('<image>', 'the image file')
    .option('--listen <host:port>', 'where to serve it (port 0 picks a free one)', '127.0.0.1:0')
    .option(
      '--key <file>',
      'the key the image is signed with and pullers must hold (default: $ROAM_HOME/checkpoint.key)',
    )
    .option(
      '--copies <n>',
      'exit after serving this many copies (default: serve until stopped)',
      positiveInt,
    )
    .option(
      '--max-bandwidth <rate>',
      'send at most this much for all copies together, e.g. 100Mbit (a source behind a slow link)',
      rate,
    )
    .option(
      '--json',
      'JSON lines: {"event":"serving","uri":...,"sha256":...}, one "served" per copy, "totals" at the end',
    )
    .addHelpText(
      'after',
      `
Prints the boot URI (http://HOST:PORT/v1/image) on stdout. The image is checked
(its MAC under --key) before it is served. A puller upgrades the HTTP connection
to the migration channel, so only a key holder gets the image, and it checks the
image's SHA-256 and MAC before it boots it. On SIGTERM or SIGINT (or after
--copies) it prints how many copies and bytes it sent.

Examples:
  roam run --pack app.img examples/bigmem.wasm 4 3   # a hypercube boot of 8 cstraps
  roam serve-image app.img --listen 127.0.0.1:7300
  roam boot-hypercube --from http://127.0.0.1:7300/v1/image --to C0 C1 C2 C3 C4 C5 C6 C7`,
    )
    .action(async (file: string, o: ServeFlags) => {
      const say = (text: string, e: Record<string, unknown>): void => {
        process.stderr.write(o.json ? `${JSON.stringify(e)}\n` : `roam: ${text}\n`);
      };
      const s = await serveImageFile(file, {
        listen: o.listen,
        keyFile: o.key,
        copies: o.copies,
        maxBandwidth: o.maxBandwidth,
        onServed: (c) =>
          say(`served a copy to ${c.to} (${mib(c.bytes)}) in ${c.ms.toFixed(0)} ms`, {
            event: 'served',
            ...c,
          }),
        onRefused: (from, why) => say(`${from}: ${why}`, { event: 'refused', from, reason: why }),
        onEnd: (t) =>
          say(`served ${t.copies} copies, ${mib(t.bytesSent)} in all`, { event: 'totals', ...t }),
      });
      process.stdout.write(`${s.uri}\n`);
      say(`serving ${file} (${mib(s.bytes)}, sha256 ${s.sha256}) at ${s.uri}`, {
        event: 'serving',
        uri: s.uri,
        sha256: s.sha256,
        bytes: s.bytes,
      });
    });
}
