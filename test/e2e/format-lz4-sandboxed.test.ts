// Inside the node daemon's sandbox (Node's permission model, no addons) the LZ4
// codec is the WebAssembly build: it must read what the native addon wrote and
// write what the addon reads, since the two ends of a migration may differ.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { PAGE_SIZE } from '../../src/memory/frames.js';
import { lz4Codec, lz4Compress, lz4Decompress } from '../../src/format/compress.js';
import { ROOT } from '../helpers.js';

const page = Buffer.alloc(PAGE_SIZE);
for (let i = 0; i < PAGE_SIZE; i++) page[i] = (i * 7) % 13 === 0 ? i & 0xff : 0x41 + (i % 5);

test('the sandboxed codec and the native one read each other’s blocks', () => {
  assert.equal(lz4Codec(), 'lz4-napi');
  const mod = path.join(ROOT, 'dist/src/format/compress.js');
  const script = `
    const { lz4Codec, lz4Compress, lz4Decompress } = await import(${JSON.stringify(mod)});
    const input = Buffer.from(process.argv[1], 'base64');
    const page = lz4Decompress(input, ${PAGE_SIZE});
    process.stdout.write(JSON.stringify({ codec: lz4Codec(), page: page.toString('base64'), block: lz4Compress(page).toString('base64') }));`;
  const out = execFileSync(
    process.execPath,
    [
      '--experimental-permission',
      `--allow-fs-read=${ROOT}/*`,
      '--no-warnings',
      '--input-type=module',
      '-e',
      script,
      lz4Compress(page).toString('base64'),
    ],
    { encoding: 'utf8' },
  );
  const r = JSON.parse(out) as { codec: string; page: string; block: string };
  assert.equal(r.codec, 'lz4-wasm-nodejs');
  assert.deepEqual(Buffer.from(r.page, 'base64'), page);
  assert.deepEqual(lz4Decompress(Buffer.from(r.block, 'base64'), PAGE_SIZE), page);
});
