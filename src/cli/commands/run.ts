import fs from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { bootVm } from '../../vm/create.js';
import type { Kernel } from '../../guest/kernel.js';
import { serveVm } from '../../vm/session.js';
import { collect, parseDir, parseEnv, size, mib } from '../options.js';
import { vmExit } from '../../vm/exit.js';
import { detach, withoutDetach } from '../detach.js';
import { Progress } from '../progress.js';

/** --dir HOST::GUEST, refused here (naming the flag) when HOST is not a folder. */
function dirSpec(v: string, acc: Array<{ host: string; guest: string }>) {
  const d = parseDir(v);
  let isDir = false;
  try {
    isDir = fs.statSync(d.host).isDirectory();
  } catch {
    throw new InvalidArgumentError(`the host folder ${d.host} does not exist; create it first.`);
  }
  if (!isDir) throw new InvalidArgumentError(`${d.host} is not a folder.`);
  return [...acc, d];
}

/** A line of roam's own on stderr (stdout is the program's): plain, or one JSON object. */
const say = (json: boolean | undefined, event: Record<string, unknown>, text: string): void =>
  void process.stderr.write(json ? `${JSON.stringify(event)}\n` : `roam: ${text}\n`);

const RUN_HELP = `
roam's options go before the module; everything after it is the program's
(roam run prog.wasm -e x passes "-e x"), and argv[0] is the module path as given.

The program sees, from fd 3 in wasmtime's order: the --dir folders, the VM's
RAM disk at / (at /ram instead when a --dir folder is mounted at /, e.g.
--dir ./data::/), /dev (null, zero, urandom, checkpoint), /net (open
/net/tcp/HOST:PORT to connect out), then the --tcplisten sockets. Its
stdout/stderr are this command's: everything it writes reaches a pipe before
the VM exits, and a reader that goes away (| head) ends it as SIGPIPE does.

Examples:
  roam run examples/bigmem.wasm 256 20
  roam run --tcplisten 127.0.0.1:7000 examples/echo-server.wasm
  roam run --dir /tmp/out::/out examples/ckpt-driver.wasm /out/vm.ckpt
  roam run --with "examples/counter.wasm 20 50" --dir /tmp/out::/out examples/ckpt-driver.wasm /out/vm.ckpt
  roam run --to 127.0.0.1:40123 --key job.token.key --tcplisten 127.0.0.1:7000 examples/echo-server.wasm

With --to, the VM is built here (its program prepared, nothing run) and sent as
the checkpoint stream of a migration; its --tcplisten sockets are opened at the
destination. --dir folders stay on this host, so they cannot be used with --to.`;

export function register(program: Command): void {
  program
    .command('run')
    .description(
      'Run a WASI program in a new VM in the foreground; the VM can then be checkpointed while it runs',
    )
    .argument('<program>', 'a WASI preview1 module (.wasm), e.g. examples/bigmem.wasm')
    .argument(
      '[args...]',
      "the program's arguments: everything after the module is the program's, options included (as in wasmtime)",
    )
    .passThroughOptions()
    .option(
      '--dir <host::guest>',
      'preopen a host folder at a guest path (repeatable). Its contents live OUTSIDE the VM: they are not part of checkpoints and do not move with the VM',
      dirSpec,
      [],
    )
    .option(
      '--tcplisten <addr>',
      'preopen a TCP listener on HOST:PORT for the program (repeatable), as in wasmtime',
      collect,
      [],
    )
    .option(
      '--env <K=V>',
      'set an environment variable for the program (repeatable)',
      (v: string, acc: string[]) => [...acc, parseEnv(v)],
      [],
    )
    .option(
      '--with <"prog.wasm args">',
      'start another program in the same VM, with its own memory (repeatable); the VM ends when all have exited',
      collect,
      [],
    )
    .option(
      '--memory <size>',
      'memory limit per program (e.g. 256M, 1G; a bare number is MiB)',
      size('MiB'),
    )
    .option(
      '--disk <size>',
      'RAM disk capacity (the in-VM file system at /, or at /ram when a --dir folder takes /; part of every checkpoint; a bare number is MiB)',
      size('MiB'),
      1024,
    )
    .option('--quiet', 'do not print the VM id and control socket on stderr')
    .option(
      '--json',
      'roam\'s lines on stderr as JSON ({"event":"running",...}); with --to or --detach the result on stdout',
    )
    .option(
      '-d, --detach',
      'run the VM in the background: print its id once it runs; its output goes to `roam logs VM`',
    )
    .option(
      '--to <host:port>',
      'do not run it here: upload the new VM into a cstrap (e.g. the one `roam boot` printed) and exit',
    )
    .option(
      '--pack <file>',
      'do not run it here: write the new VM to FILE as a boot image (signed with --key) for `roam serve-image` and `roam boot-hypercube`, print its SHA-256, and exit',
    )
    .option(
      '--key <file>',
      'with --to: the key the cstrap expects (the .key file `roam tokens buy` wrote; default $ROAM_HOME/checkpoint.key); with --pack: the key the image is signed with',
    )
    .addHelpText('after', RUN_HELP)
    .action((prog: string, args: string[], o: RunFlags) => runVm(prog, args, o));
}

/** roam run's flags, as commander parses them. */
interface RunFlags {
  dir: Array<{ host: string; guest: string }>;
  tcplisten: string[];
  env: string[];
  with: string[];
  memory?: number;
  disk?: number;
  quiet?: boolean;
  detach?: boolean;
  to?: string;
  pack?: string;
  key?: string;
  json?: boolean;
}

/** --pack: the never-started VM as a signed boot image; its SHA-256 on stdout. */
async function packTo(kernel: Kernel, o: RunFlags & { pack: string }): Promise<void> {
  const { packVm } = await import('../../vm/upload.js');
  const img = await packVm(kernel, o.pack, { keyFile: o.key });
  process.stdout.write(
    o.json
      ? `${JSON.stringify({ event: 'packed', id: kernel.vmId, file: o.pack, ...img })}\n`
      : `${img.sha256}\n`,
  );
  if (!o.json)
    process.stderr.write(
      `roam: packed vm ${kernel.vmId} into ${o.pack} (${mib(img.bytes)}); serve it with roam serve-image ${o.pack}\n`,
    );
  process.exit(0);
}

async function runVm(prog: string, args: string[], o: RunFlags): Promise<void> {
  if (o.detach) {
    if (o.to) throw new Error('--detach and --to do not go together: with --to nothing runs here');
    const id = await detach(withoutDetach(process.argv.slice(3), prog));
    return void console.log(o.json ? JSON.stringify({ event: 'detached', id }) : id);
  }
  if (o.to && o.pack) throw new Error('--to and --pack do not go together: choose one');
  if ((o.to || o.pack) && o.dir.length)
    throw new Error(
      '--dir folders live on this host and cannot move with --to or --pack; put the files in the VM (its RAM disk) instead',
    );
  const shown = new Progress();
  const kernel = await bootVm(prog, args, {
    dirs: o.dir,
    tcplisten: o.tcplisten,
    env: o.env,
    memoryMiB: o.memory,
    diskMiB: o.disk,
    also: o.with.map((w: string) => {
      const [program, ...a] = w.trim().split(/\s+/);
      return { program, args: a };
    }),
    onProgress: (m, info) => {
      const etaMs = info && 'etaMs' in info ? info.etaMs : undefined;
      if (o.json) return say(true, { event: 'phase', message: m, etaMs }, m);
      if (info && 'prepared' in info) shown.prepared();
      shown.line(`roam: ${m}`);
      if (info && 'preparing' in info) shown.preparing(info.etaMs);
    },
    onExit: vmExit,
    upload: !!(o.to || o.pack),
  });
  if (o.pack) return packTo(kernel, { ...o, pack: o.pack });
  if (o.to) {
    // Loaded only here: the migration source's channel and protocol are not start-up's business.
    const { uploadVm } = await import('../../vm/upload.js');
    const res = await uploadVm(kernel, o.to, {
      keyFile: o.key,
      onPhase: (m) => say(o.json, { event: 'phase', message: m }, m),
    });
    process.stdout.write(
      o.json
        ? `${JSON.stringify({ event: 'uploaded', id: kernel.vmId, to: o.to, pages: res.pagesSent, bytes: res.bytes, totalMs: res.totalMs })}\n`
        : `uploaded vm ${kernel.vmId} to ${o.to}: ${res.pagesSent} pages, ${mib(res.bytes)} in ${(res.totalMs / 1000).toFixed(2)} s; it runs there now\n`,
    );
    process.exit(0);
  }
  const rec = await serveVm(kernel, { program: prog, args });
  if (o.json)
    say(
      true,
      { event: 'running', id: rec.id, pid: rec.pid, program: prog, control: rec.socket },
      '',
    );
  else if (!o.quiet)
    say(false, {}, `vm ${rec.id} running ${prog} (pid ${rec.pid}, control ${rec.socket})`);
  kernel.start();
}
