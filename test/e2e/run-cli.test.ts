// `roam run` behaves as wasmtime's: everything after the module is the program's,
// argv[0] is the module path as given, stdout to a pipe carries every byte before
// the VM exits (even to a reader slower than the program), a reader that goes away
// ends the program as SIGPIPE would, quietly; and a checkpoint of a program that
// exits while it is taken fails, saying so, instead of writing a file of nothing.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { spawn } from 'node:child_process';
import { HOME, ROAM, example, roam, sleep, start, tmpdir, track, until } from '../helpers.js';

void test('options after the module are the program’s; argv[0] is the path as given', async () => {
  const prog = path.relative(process.cwd(), example('args'));
  const r = await roam(['run', '--quiet', '--env', 'K=v', prog, '-e', 'x', '--dir', '/', '--']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stdout,
    [`argv[0]=${prog}`, 'argv[1]=-e', 'argv[2]=x', 'argv[3]=--dir', 'argv[4]=/', 'argv[5]=--']
      .concat('env=K=v', '')
      .join('\n'),
  );
});

/** Byte i of spew's stream. */
const spewByte = (i: number): number => (i * 7 + Math.floor(i / 4096)) & 0xff;

/** `roam run --quiet ARGS` with its stdout as a raw pipe to this process. */
function run(args: string[]) {
  const proc = track(
    spawn(process.execPath, [ROAM, 'run', '--quiet', ...args], {
      env: { ...process.env, ROAM_HOME: HOME },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((r) => proc.on('close', (code) => r(code ?? 128)));
  return { proc, stdout: proc.stdout!, stderr: () => stderr, exited };
}

void test('stdout to a slow pipe gets every byte before the VM exits', async () => {
  const MIB = 12;
  const vm = run([example('spew'), String(MIB)]);
  // The reader does not read for a while: the program must wait for it, not drop bytes.
  vm.stdout.pause();
  await sleep(2000);
  const chunks: Buffer[] = [];
  vm.stdout.on('data', (d: Buffer) => chunks.push(d));
  vm.stdout.resume();
  assert.equal(await vm.exited, 0, vm.stderr());
  const out = Buffer.concat(chunks);
  assert.equal(out.length, MIB << 20, 'every byte arrived');
  for (let i = 0; i < out.length; i += 4093)
    assert.equal(out[i], spewByte(i), `byte ${i} is the program's`);
});

void test('a reader that goes away (| head) ends the VM quietly, as SIGPIPE does', async () => {
  const vm = run([example('spew'), '1000']);
  let got = 0;
  await new Promise<void>((resolve) =>
    vm.stdout.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= 1 << 16) resolve();
    }),
  );
  vm.stdout.destroy();
  const code = await vm.exited;
  assert.equal(code, 141, `exit status of a program ended by SIGPIPE; stderr: ${vm.stderr()}`);
  assert.doesNotMatch(vm.stderr(), /Error|EPIPE|\n\s+at /, 'no crash trace');
});

void test('a checkpoint of a program that exits while it is taken fails and writes nothing', async () => {
  // 160 MiB to copy, one short pass of the program: it ends while round 0 runs.
  const vm = start(['run', example('bigmem'), '160', '1']);
  const id = await vm.vmId;
  const file = path.join(tmpdir('ckexit'), 'vm.ckpt');
  const r = await roam(['checkpoint', id, '-o', file]);
  assert.equal(await vm.exited, 0, vm.stderr());
  if (r.code === 0) {
    // The freeze came first after all (a fast machine): the file must then resume the program.
    const back = await roam(['restore', '--quiet', file]);
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stdout, /done checksum/);
    return;
  }
  assert.match(r.stderr, /exited while the checkpoint was being taken/);
  assert.match(r.stderr, /\[vm-exited\]/);
  await until(() => !fs.existsSync(file), 'no file');
  assert.deepEqual(fs.readdirSync(path.dirname(file)), [], 'nothing written, not even a part');
});
