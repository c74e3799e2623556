import { InvalidArgumentError, type Command } from 'commander';
import { loaderHash } from '../../migrate/loader.js';
import { WASM_FEATURES } from '../../memory/features.js';
import { parseHostPort } from '../../util/address.js';
import { bootCstrap } from '../../vm/boot.js';

function sha256Hex(v: string): string {
  if (!/^[0-9a-f]{64}$/i.test(v))
    throw new InvalidArgumentError(
      'expected a SHA-256 as 64 hex digits (`roam cstrap --print-loader-hash`).',
    );
  return v.toLowerCase();
}

function featureList(v: string): string[] {
  const list = v
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean);
  const unknown = list.filter((f) => !WASM_FEATURES.includes(f));
  if (unknown.length)
    throw new InvalidArgumentError(
      `unknown feature(s) ${unknown.join(', ')}; known: ${WASM_FEATURES.join(', ')}.`,
    );
  return list;
}

interface CstrapOptions {
  listen: string;
  loaderHash?: string;
  key?: string;
  wasmFeatures?: string[];
  printLoaderHash?: boolean;
  quiet?: boolean;
  json?: boolean;
  hostChannel?: boolean;
  homeVia?: string;
  bootUri?: string;
}

export function register(program: Command): void {
  program
    .command('cstrap')
    .description(
      'Run an empty VM that waits for a VM to migrate (or fork) into it, then runs that VM in this process',
    )
    .option(
      '--listen <addr>',
      'TCP address to receive on, HOST:PORT (port 0 picks a free one)',
      '127.0.0.1:0',
    )
    .option(
      '--loader-hash <sha256>',
      'accept only the loader with this SHA-256 (a boot token pins it)',
      sha256Hex,
    )
    .option(
      '--key <file>',
      'key shared with the source (default: $ROAM_HOME/checkpoint.key, created if missing)',
    )
    .option(
      '--wasm-features <list>',
      `WASM features this host offers, comma-separated, from: ${WASM_FEATURES.join(', ')} (default: all)`,
      featureList,
    )
    .option(
      '--boot-uri <url>',
      'do not listen: pull the VM from a VM serving itself there (roam migrate VM --serve HOST:PORT prints it)',
    )
    .option('--print-loader-hash', "print this roam's loader hash and exit")
    .option('--quiet', 'print only the listening address')
    .option(
      '--json',
      'report on stderr as JSON lines ({"event":"listening","addr":...}, then "arrived")',
    )
    .option(
      '--home-via <host:port>',
      "reach an arriving VM's home (its commit arbiter) at this address instead of the one its source names",
    )
    .option(
      '--host-channel',
      'started by roam node: take the key and loader pin from stdin, report the address on fd 3, obey notices',
    )
    .addHelpText(
      'after',
      `
The cstrap prints "roam: cstrap listening on HOST:PORT" on stderr. A source sends
it a VM with \`roam migrate VM --to HOST:PORT\` (or \`roam fork\`). Connections that
fail the key exchange, send another loader or a corrupt stream are refused and
the cstrap keeps waiting; once a VM has arrived whole, this process runs it.`,
    )
    .action(async (o: CstrapOptions) => {
      if (o.printLoaderHash) {
        console.log(loaderHash());
        return;
      }
      const features = o.wasmFeatures ?? WASM_FEATURES;
      await bootCstrap({
        listen: parseHostPort(o.listen, { allowPortZero: true }),
        hostChannel: !!o.hostChannel,
        bootUri: o.bootUri,
        loaderHash: o.loaderHash,
        keyFile: o.key,
        features,
        quiet: !!o.quiet,
        json: !!o.json,
        homeVia: o.homeVia,
      });
    });
}
