import type { Command } from 'commander';
import { RoamError } from '../../util/errors.js';
import { ControlFeed } from '../../viewer/control-feed.js';
import { RecordLogFeed } from '../../viewer/log-feed.js';
import { findVm } from '../../vm/control.js';
import { serveViewer } from '../../viewer/server.js';
import type { BlinkFeed } from '../../viewer/feed.js';
import { parseHostPort } from '../../util/address.js';

interface ViewOptions {
  log?: string;
  listen: string;
  size: string;
  json?: boolean;
}

function feedFor(vm: string | undefined, o: ViewOptions): BlinkFeed {
  if (o.log) return new RecordLogFeed(o.log);
  if (!vm)
    throw new RoamError('view-no-vm', 'roam view: name a VM (see `roam ps`) or give --log FILE', {
      kind: 'usage',
    });
  let id: string;
  try {
    id = findVm(vm).id; // by id from here on: a migrated VM has another pid
  } catch (e) {
    throw new RoamError('no-vm', (e as Error).message);
  }
  return new ControlFeed(id);
}

export function register(program: Command): void {
  program
    .command('view')
    .description(
      "Serve a VM's Blink display (BlinkGL procedures and objects) to a browser: prints the URL",
    )
    .argument('[vm]', 'the VM whose display to show')
    .option(
      '--log <file>',
      'follow a BlinkGL record log (what the guest writes to /dev/blink) instead',
    )
    .option(
      '--listen <host:port>',
      'where the viewer page is served (port 0: any free one)',
      '127.0.0.1:0',
    )
    .option('--size <WxH>', "the display window's size in pixels", '512x512')
    .option('--json', 'print {"url": ...} as JSON')
    .action(async (vm: string | undefined, o: ViewOptions) => {
      const size = /^(\d{1,4})x(\d{1,4})$/.exec(o.size);
      if (!size)
        throw new RoamError('bad-size', `--size: '${o.size}' is not WIDTHxHEIGHT (e.g. 512x512)`, {
          kind: 'usage',
        });
      let addr: { host: string; port: number };
      try {
        addr = parseHostPort(o.listen, { allowPortZero: true });
      } catch (e) {
        throw new RoamError('bad-listen', `--listen: ${(e as Error).message}`, { kind: 'usage' });
      }
      const { host, port } = addr;
      const feed = feedFor(vm, o);
      const v = await serveViewer(feed, {
        host,
        port,
        width: Number(size[1]),
        height: Number(size[2]),
      });
      console.log(o.json ? JSON.stringify({ url: v.url }) : `roam: viewer at ${v.url}`);
      const stop = () => void v.close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
