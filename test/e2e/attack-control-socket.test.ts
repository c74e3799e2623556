// Issue 13, attack 5 (control sockets): JavaScript of another tenant could drive a
// VM's control socket, whose `migrate` takes a channel key of the caller's choosing,
// and so have the VM sent to it. Node has no SO_PEERCRED, so the socket is reachable
// only through a 0700 folder (and is 0600 itself): here another uid tries, as an
// attacker would, with the request that would hand it the VM; it cannot even connect.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { example, roam, start, tmpdir, until } from '../helpers.js';

const ATTACK = `
const s = require('net').connect(process.argv[1]);
s.on('connect', () => s.write(JSON.stringify({ op: process.argv[2], to: '127.0.0.1:9', key: 'ab'.repeat(32) }) + '\\n'));
s.on('data', (d) => (console.log('answered ' + String(d).trim()), s.destroy()));
s.on('error', (e) => console.log(e.code));
`;

test(
  "another uid cannot reach a VM's control socket, so cannot migrate it with its own key",
  {
    skip: process.getuid?.() === 0 ? false : 'needs root (to act as another uid)',
    timeout: 60_000,
  },
  async () => {
    const home = tmpdir('ctl');
    fs.chmodSync(home, 0o755); // other users may traverse ROAM_HOME: only vms/ keeps them out
    const vm = start(['run', example('counter'), '100000', '50'], { env: { ROAM_HOME: home } });
    try {
      const id = await vm.vmId;
      const vms = path.join(home, 'vms');
      let sock = '';
      await until(
        () => !!(sock = fs.readdirSync(vms).find((f) => f.endsWith('.sock')) ?? ''),
        'the socket',
      );
      sock = path.join(vms, sock);
      assert.equal(fs.statSync(vms).mode & 0o777, 0o700);
      // (made with the umask's mode, then chmod'ed: the 0700 folder covers the moment between)
      await until(() => (fs.statSync(sock).mode & 0o777) === 0o600, 'the socket to be 0600', 5000);
      const as = (uid: number | undefined, op: string) =>
        spawnSync(process.execPath, ['-e', ATTACK, sock, op], {
          uid,
          gid: uid,
          encoding: 'utf8',
          timeout: 10_000,
        }).stdout.trim();
      assert.equal(as(65534, 'migrate'), 'EACCES', 'nobody reached the socket');
      assert.equal(as(65534, 'status'), 'EACCES');
      // Even with the socket itself opened up, the folder keeps another uid out.
      fs.chmodSync(sock, 0o666);
      assert.equal(as(65534, 'migrate'), 'EACCES');
      fs.chmodSync(sock, 0o600);
      // Its owner still drives it; the VM ran on, untouched.
      assert.match(as(undefined, 'status'), new RegExp(`answered .*"id":"${id}"`));
      const st = await roam(['stop', id], { env: { ROAM_HOME: home } });
      assert.equal(st.code, 0, st.stderr);
      assert.equal(await vm.exited, 143);
    } finally {
      vm.proc.kill('SIGKILL');
    }
  },
);
