// Every example migrated live in the middle of its run, between two real OS
// processes over TCP: the source's output up to the freeze plus the destination's
// output after it must be exactly what an unmigrated run prints.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { example, roam, start, until } from '../helpers.js';
import { cstrap } from '../migrate-fixtures.js';

const cases = [
  { name: 'counter', args: ['40', '50'] }, // mostly asleep in poll_oneoff
  { name: 'bigmem', args: ['32', '120'] }, // CPU-bound, large working set
  { name: 'files', args: ['/tmp/work', '60'] }, // RAM disk, open files
  { name: 'sieve-as', args: ['600000000', '5000000'] }, // AssemblyScript (long enough that the move lands mid-run)
  { name: 'dirtier', args: ['16', '800'] }, // dirties every page all the time
];

for (const c of cases) {
  test(`${c.name} ${c.args.join(' ')}: migrated mid-run prints what an unmigrated run prints`, async () => {
    const reference = await roam(['run', '--quiet', example(c.name), ...c.args]);
    assert.equal(reference.code, 0, reference.stderr);
    const dst = await cstrap();
    const vm = start(['run', example(c.name), ...c.args]);
    const id = await vm.vmId;
    await until(() => vm.stdout().length >= reference.stdout.length / 3, 'progress');
    const m = await roam(['migrate', id, '--to', dst.addr, '--verify', '--json']);
    assert.equal(m.code, 0, m.stderr);
    const res = JSON.parse(m.stdout);
    assert.equal(res.kind, 'migration');
    assert.equal(res.vmId, id, 'a migrated VM keeps its id');
    assert.ok(res.rounds.length >= 1);
    assert.equal(await vm.exited, 0, vm.stderr());
    assert.match(vm.stderr(), /this copy ends/);
    assert.equal(await dst.exited, 0, dst.stderr());
    assert.equal(
      vm.stdout() + dst.stdout(),
      reference.stdout,
      'source output, then destination output',
    );
  });
}
