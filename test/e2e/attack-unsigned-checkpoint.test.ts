// Issue 13, attack 4 of the list (forged checkpoints): an attacker hands the user
// a checkpoint file with no HMAC (a plain SHA-256 in its place), which anyone can
// write. roam restore and roam inspect refuse it although the user's key exists,
// and without a key they refuse too; --allow-unsigned is the explicit way in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { sampleCheckpoint, writeSample } from '../../src/format/sample.js';
import { fileTarget } from '../../src/format/target.js';
import { roam, tmpdir } from '../helpers.js';

test('an unsigned checkpoint is refused by restore and inspect unless --allow-unsigned', async () => {
  const dir = tmpdir('unsigned'),
    home = path.join(dir, 'home'),
    keyless = path.join(dir, 'keyless');
  fs.mkdirSync(home);
  fs.mkdirSync(keyless);
  fs.writeFileSync(path.join(home, 'checkpoint.key'), randomBytes(32), { mode: 0o600 });
  for (const format of ['stream', 'image'] as const) {
    const forged = path.join(dir, `forged.${format}`);
    await writeSample(fileTarget(forged, { format }), sampleCheckpoint({ seed: 3 })); // no key: SHA-256 only
    for (const env of [{ ROAM_HOME: home }, { ROAM_HOME: keyless }]) {
      for (const cmd of ['restore', 'inspect']) {
        const r = await roam([cmd, forged], { env });
        assert.notEqual(r.code, 0, `${cmd} ${format} accepted an unsigned file`);
        assert.match(r.stderr, /unsigned/);
        assert.match(r.stderr, /--allow-unsigned|--key/);
        assert.doesNotMatch(r.stdout, /vm-sample/);
      }
    }
    const ok = await roam(['inspect', '--allow-unsigned', forged], { env: { ROAM_HOME: home } });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /unsigned \(SHA-256\)/);
  }
});
