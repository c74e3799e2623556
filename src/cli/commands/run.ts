import type { Command } from 'commander';
import { bootVm } from '../../guest/vm.js';
import { serveVm } from '../vm-session.js';
import { collect, parseDir, parseEnv, positiveMiB, vmExit } from '../options.js';

export function register(program: Command): void {
  program
    .command('run')
    .description('Run a WASI program in a new VM in the foreground; the VM can then be checkpointed while it runs')
    .argument('<program>', 'a WASI preview1 module (.wasm), e.g. examples/bigmem.wasm')
    .argument('[args...]', 'arguments passed to the program')
    .option('--dir <host::guest>', 'preopen a host folder at a guest path (repeatable). Its contents live OUTSIDE the VM: they are not part of checkpoints and do not move with the VM', collect, [])
    .option('--tcplisten <addr>', 'preopen a TCP listener on HOST:PORT for the program (repeatable), as in wasmtime', collect, [])
    .option('--env <K=V>', 'set an environment variable for the program (repeatable)', collect, [])
    .option('--with <"prog.wasm args">', 'start another program in the same VM, with its own memory (repeatable); the VM ends when all have exited', collect, [])
    .option('--memory <MiB>', 'memory limit per program', positiveMiB)
    .option('--disk <MiB>', 'RAM disk capacity (the in-VM file system at /, part of every checkpoint)', positiveMiB, 1024)
    .option('--quiet', 'do not print the VM id and control socket on stderr')
    .addHelpText('after', `
The program sees: / (the VM's RAM disk), /dev (null, zero, urandom, checkpoint),
/net (open /net/tcp/HOST:PORT to connect out), the --dir folders, and after
them the --tcplisten sockets. Its stdout/stderr are this command's.

Examples:
  roam run examples/bigmem.wasm 256 20
  roam run --tcplisten 127.0.0.1:7000 examples/echo-server.wasm
  roam run --dir /tmp/out::/out examples/ckpt-driver.wasm /out/vm.ckpt
  roam run --with "examples/counter.wasm 20 50" --dir /tmp/out::/out examples/ckpt-driver.wasm /out/vm.ckpt`)
    .action(async (prog: string, args: string[], o) => {
      const kernel = await bootVm(prog, args, {
        dirs: o.dir.map(parseDir), tcplisten: o.tcplisten, env: o.env.map(parseEnv),
        memoryMiB: o.memory, diskMiB: o.disk,
        also: o.with.map((w: string) => { const [program, ...a] = w.trim().split(/\s+/); return { program, args: a }; }),
        onProgress: (m) => process.stderr.write(`roam: ${m}\n`),
        onExit: vmExit,
      });
      const rec = await serveVm(kernel, { program: prog, args });
      if (!o.quiet) process.stderr.write(`roam: vm ${rec.id} running ${prog} (pid ${rec.pid}, control ${rec.socket})\n`);
      kernel.start();
    });
}
