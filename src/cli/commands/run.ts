import type { Command } from 'commander';
import { bootVm } from '../../vm/create.js';
import { packVm, uploadVm } from '../../vm/upload.js';
import { serveVm } from '../../vm/session.js';
import { collect, parseDir, parseEnv, positiveMiB, mib } from '../options.js';
import { vmExit } from '../../vm/exit.js';
import { detach, withoutDetach } from '../detach.js';

const PACK =
  'do not run it here: write the new VM to FILE as a boot image (signed with --key) for `roam serve-image` and `roam boot-hypercube`, print its SHA-256, and exit';

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
      collect,
      [],
    )
    .option(
      '--tcplisten <addr>',
      'preopen a TCP listener on HOST:PORT for the program (repeatable), as in wasmtime',
      collect,
      [],
    )
    .option('--env <K=V>', 'set an environment variable for the program (repeatable)', collect, [])
    .option(
      '--with <"prog.wasm args">',
      'start another program in the same VM, with its own memory (repeatable); the VM ends when all have exited',
      collect,
      [],
    )
    .option('--memory <MiB>', 'memory limit per program', positiveMiB)
    .option(
      '--disk <MiB>',
      'RAM disk capacity (the in-VM file system at /, or at /ram when a --dir folder takes /; part of every checkpoint)',
      positiveMiB,
      1024,
    )
    .option('--quiet', 'do not print the VM id and control socket on stderr')
    .option('--pack <file>', PACK)
    .option(
      '-d, --detach',
      'run the VM in the background: print its id once it runs; its output goes to `roam logs VM`',
    )
    .option(
      '--to <host:port>',
      'do not run it here: upload the new VM into a cstrap (e.g. the one `roam boot` printed) and exit',
    )
    .option(
      '--key <file>',
      'with --to: the key the cstrap expects (the .key file `roam tokens buy` wrote; default $ROAM_HOME/checkpoint.key); with --pack: the key the image is signed with',
    )
    .addHelpText(
      'after',
      `
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

With --to (or --pack), the VM is built here (its program prepared, nothing run) and sent as
the checkpoint stream of a migration (or written to a file); its --tcplisten sockets are
opened where it runs. --dir folders stay on this host, so they go with neither.`,
    )
    .action((prog: string, args: string[], o: RunFlags) => runVm(prog, args, o));
}

/** roam run's flags, as commander parses them. */
interface RunFlags {
  dir: string[];
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
}

async function runVm(prog: string, args: string[], o: RunFlags): Promise<void> {
  if (o.detach) {
    if (o.to) throw new Error('--detach and --to do not go together: with --to nothing runs here');
    return void console.log(await detach(withoutDetach(process.argv.slice(3), prog)));
  }
  if (o.to && o.pack) throw new Error('--to and --pack do not go together: choose one');
  if ((o.to || o.pack) && o.dir.length)
    throw new Error(
      `--dir folders live on this host and cannot move with ${o.to ? '--to' : '--pack'}; put the files in the VM (its RAM disk) instead`,
    );
  const kernel = await bootVm(prog, args, {
    dirs: o.dir.map(parseDir),
    tcplisten: o.tcplisten,
    env: o.env.map(parseEnv),
    memoryMiB: o.memory,
    diskMiB: o.disk,
    also: o.with.map((w: string) => {
      const [program, ...a] = w.trim().split(/\s+/);
      return { program, args: a };
    }),
    onProgress: (m) => process.stderr.write(`roam: ${m}\n`),
    onExit: vmExit,
    upload: !!(o.to || o.pack),
  });
  if (o.pack) {
    const img = await packVm(kernel, o.pack, { keyFile: o.key });
    process.stdout.write(`${img.sha256}\n`);
    process.stderr.write(
      `roam: packed vm ${kernel.vmId} into ${o.pack} (${mib(img.bytes)}, sha256 ${img.sha256}): serve it with roam serve-image ${o.pack}\n`,
    );
    process.exit(0);
  }
  if (o.to) {
    const res = await uploadVm(kernel, o.to, {
      keyFile: o.key,
      onPhase: (m) => process.stderr.write(`roam: ${m}\n`),
    });
    process.stdout.write(
      `uploaded vm ${kernel.vmId} to ${o.to}: ${res.pagesSent} pages, ${mib(res.bytes)} in ${(res.totalMs / 1000).toFixed(2)} s; it runs there now\n`,
    );
    process.exit(0);
  }
  const rec = await serveVm(kernel, { program: prog, args });
  if (!o.quiet)
    process.stderr.write(
      `roam: vm ${rec.id} running ${prog} (pid ${rec.pid}, control ${rec.socket})\n`,
    );
  kernel.start();
}
