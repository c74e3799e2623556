// The trusted computing base stays small enough to read in one sitting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { codeLines, countTcbLines, tcbFiles } from '../../src/host/tcb.js';

// dist/test/unit/x.js -> the repository root, where the .ts sources are.
const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..');

// Counted as Prettier lays the code out (100 columns), blank and comment-only lines left out.
// DESIGN's target is under 500 and is NOT met: issue 13 added request MACs, the on-disk job
// table and recovery after a restart, the hashing budget, memory/disk quotas and the
// sandbox path checks and the cgroup setup (732 -> 911 lines). Issue 11's node drain added
// two (the pid file `roam node drain` signals, and a top-up that lets a notified VM run on).
// Then the network namespaces (src/host/netns.ts: veth, the nftables rules, publishing ports
// within the token's count) and the launcher reading the VM's fd 3 line by line, bounded
// (930 -> 1144), and the daemon's flags taking sizes and durations as the CLI's do (1151).
// Issue 13's third round added cgroups by default (v2 and v1: src/host/cgroups.ts, 63), each
// daemon's own table and namespaces, and the upload port unpublished (1213), and cut the
// daemon's option parsing to node:util's parseArgs (no commander and no help text in its
// process), the isolation report's duplication, packetd's renaming of the flags and a few
// duplicated callbacks (1198), and VM ids no longer chosen by their /30 (1191); a VM whose
// cgroup cannot be set is killed, not left running (1201). This guard holds that count
// until it is cut further.
const GUARD = 1201;

test('privileged code (src/host + what it imports from src/tokens) does not grow', () => {
  const { total, files } = countTcbLines(ROOT);
  console.log(`TCB: ${total} lines`, files);
  assert.ok(files['src/host/packetd.ts'] > 0 && files['src/tokens/chain.ts'] > 0);
  assert.ok(total <= GUARD, `TCB is ${total} lines (guard ${GUARD}, target 500)`);
});

test('the daemon never loads the host-side tools excluded from the count', () => {
  const files = tcbFiles(ROOT);
  assert.ok(!files.includes('src/host/client.ts') && !files.includes('src/host/tcb.ts'));
  assert.ok(!files.some((f) => f.startsWith('src/broker/')), 'the broker is not privileged');
});

test('blank lines and comments are not counted', () => {
  assert.equal(codeLines('// a\n\n/* b\n c */\nconst x = 1; // d\n  /* e */ f();\n'), 2);
});
