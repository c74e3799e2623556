// Boot images over roam-image/1 (src/migrate/image-pull.ts), server and puller
// in this process over real loopback sockets: only a key holder gets the image,
// a pinned hash or a failed MAC check refuses it (and the server hears why), and
// the BOOT_URI decoder takes nothing but what it documents (fuzzed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { pullImage, serveImage } from '../../src/migrate/image-pull.js';
import { parseBootUri } from '../../src/migrate/protocol.js';
import { parseHave } from '../../src/vm/hypercube.js';
import { rng } from '../helpers.js';

const psk = randomBytes(32);
const image = randomBytes(3 * 1024 * 1024 + 17); // more than one chunk, not a multiple of it
const sha256 = createHash('sha256').update(image).digest('hex');

async function withServer(
  fn: (uri: string, refused: string[], s: Awaited<ReturnType<typeof serveImage>>) => Promise<void>,
): Promise<void> {
  const refused: string[] = [];
  const s = await serveImage({
    listen: '127.0.0.1:0',
    psk,
    image,
    onRefused: (_from, why) => refused.push(why),
  });
  try {
    await fn(s.uri, refused, s);
  } finally {
    s.close();
  }
}

void test('a key holder pulls the image whole, as many times as it likes', async () => {
  await withServer(async (uri, _r, s) => {
    for (let i = 0; i < 2; i++) {
      const got = await pullImage(uri, { psk, sha256 });
      assert.ok(got.image.equals(image));
      assert.equal(got.sha256, sha256);
    }
    // The server counts a copy once its side of the channel has ended, a moment after the puller's.
    for (let i = 0; i < 100 && s.copies < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(s.copies, 2);
    assert.ok(s.bytesSent > 2 * image.length, 'bytes written include the channel framing');
  });
});

void test('a puller without the key gets nothing', async () => {
  await withServer(async (uri, _r, s) => {
    await assert.rejects(pullImage(uri, { psk: randomBytes(32) }), /key/);
    assert.equal(s.copies, 0);
  });
});

void test('another image than the pinned one is refused, and the server hears why', async () => {
  await withServer(async (uri, refused, s) => {
    await assert.rejects(pullImage(uri, { psk, sha256: 'ab'.repeat(32) }), /another image/);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(s.copies, 0);
    assert.match(refused.join('\n'), /another image/);
  });
});

void test('an image whose own check fails (its MAC) is refused before IMAGE_OK', async () => {
  await withServer(async (uri, refused, s) => {
    const verify = () => Promise.reject(new Error('bad MAC'));
    await assert.rejects(pullImage(uri, { psk, verify }), /bad MAC/);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(s.copies, 0);
    assert.match(refused.join('\n'), /bad MAC/);
  });
});

void test('an image larger than the puller accepts is refused before it is sent', async () => {
  await withServer(async (uri, _r, s) => {
    await assert.rejects(pullImage(uri, { psk, maxBytes: 1024 }), /more than 1024/);
    assert.equal(s.copies, 0);
  });
});

void test('a plain GET, or another path, gets no image', async () => {
  await withServer(async (uri) => {
    const res = await fetch(uri);
    assert.equal(res.status, 426);
    await assert.rejects(pullImage(uri.replace('/v1/image', '/v1/other'), { psk }), /HTTP 404/);
  });
});

void test('parseBootUri: fuzzed input either parses to what it documents or throws an Error', () => {
  const valid = {
    uri: 'http://127.0.0.1:7300/v1/image',
    kind: 'image',
    sha256: 'cd'.repeat(32),
    serve: '127.0.0.1:0',
  };
  assert.deepEqual(parseBootUri(Buffer.from(JSON.stringify(valid))), valid);
  const next = rng(15);
  const base = Buffer.from(JSON.stringify(valid));
  const junk: unknown[] = [
    null,
    1,
    -1,
    'x',
    '',
    [],
    {},
    true,
    'https://x',
    'http://a b',
    'a'.repeat(3000),
  ];
  for (let i = 0; i < 5000; i++) {
    let input: Buffer;
    if (i % 3 === 0) {
      // Byte-level mutation of a valid message.
      input = Buffer.from(base);
      for (let k = 0; k < 1 + Math.floor(next() * 4); k++)
        input[Math.floor(next() * input.length)] = Math.floor(next() * 256);
    } else if (i % 3 === 1) {
      // A field replaced by a value of the wrong shape.
      const keys = Object.keys(valid) as Array<keyof typeof valid>;
      const m: Record<string, unknown> = { ...valid };
      m[keys[Math.floor(next() * keys.length)]] = junk[Math.floor(next() * junk.length)];
      input = Buffer.from(JSON.stringify(m));
    } else input = randomBytes(Math.floor(next() * 64));
    try {
      const b = parseBootUri(input);
      assert.match(b.uri, /^http:\/\/\S+$/);
      assert.ok(b.kind === 'vm' || b.kind === 'image');
      assert.ok(b.sha256 === undefined || /^[0-9a-f]{64}$/.test(b.sha256));
      assert.ok(b.serve === undefined || (typeof b.serve === 'string' && b.serve.length <= 300));
    } catch (e) {
      assert.ok(e instanceof Error, `threw a non-Error for ${input.toString('hex')}`);
      assert.ok(
        !(e instanceof TypeError),
        `a TypeError for ${input.toString('hex')}: ${String(e)}`,
      );
    }
  }
});

void test('parseHave: a HAVE whose URI is handed on to other nodes is checked, fuzzed', () => {
  const valid = {
    sha256: 'ef'.repeat(32),
    bytes: 44792,
    serving: 'http://127.0.0.1:1/v1/image',
    pullMs: 3.5,
  };
  assert.deepEqual(parseHave(Buffer.from(JSON.stringify(valid))), valid);
  const next = rng(16);
  const junk: unknown[] = [
    null,
    1,
    'x',
    '',
    [],
    {},
    true,
    'http://a b',
    `http://${'a'.repeat(400)}`,
  ];
  for (let i = 0; i < 3000; i++) {
    const m: Record<string, unknown> = { ...valid };
    const keys = Object.keys(valid);
    m[keys[Math.floor(next() * keys.length)]] = junk[Math.floor(next() * junk.length)];
    const input = i % 2 ? Buffer.from(JSON.stringify(m)) : randomBytes(Math.floor(next() * 80));
    try {
      const h = parseHave(input);
      assert.match(h.sha256, /^[0-9a-f]{64}$/);
      assert.ok(h.serving === null || /^http:\/\/\S{1,300}$/.test(h.serving));
    } catch (e) {
      assert.ok(e instanceof Error && !(e instanceof TypeError), String(e));
    }
  }
});
