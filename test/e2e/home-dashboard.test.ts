// The dashboard home serves, in a real headless Chromium: nodes, the job with its
// balance, and after a migration that migration's row and its plots (pages per
// round, WSS against the snapshot buffer, downtime), updating without a reload.
// The page itself holds no data: without the credential in its fragment it shows
// nothing but an error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { launch, noBrowser } from '../browser.js';
import { sleep } from '../helpers.js';
import { cluster, submit, T } from '../home-fixtures.js';

const skip = noBrowser() ?? false;

test(
  'the dashboard shows nodes, jobs and balances, and each migration with its plots, live',
  { ...T, skip },
  async () => {
    const c = await cluster(2);
    const browser = await launch();
    try {
      const url = /home dashboard (\S+)/.exec(c.logs('home'))?.[1];
      assert.ok(url, c.logs('home'));
      const { job } = await submit(c);
      const page = await browser.context.newPage();
      await page.goto(url);
      await page.waitForFunction(
        (j) => document.getElementById('jobs')!.textContent.includes(j),
        job,
      );
      const nodes = await page.locator('#nodes').textContent();
      assert.match(nodes ?? '', /n1/);
      assert.match(nodes ?? '', /n2/);
      assert.match((await page.locator('#jobs').textContent()) ?? '', /running/);
      await c.roam(['migrate', job, '--to', c.nodes[1].addr]);
      // No reload: the page polls.
      await page.waitForFunction(() => document.querySelectorAll('#plots svg').length === 3);
      const moves = (await page.locator('#moves').textContent()) ?? '';
      assert.match(moves, new RegExp(job));
      assert.match(moves, /n2/);
      const marks = await page.evaluate(() =>
        Array.from(document.querySelectorAll('#plots svg')).map(
          (s) => s.querySelectorAll('rect, polyline').length,
        ),
      );
      assert.ok(
        marks.every((n) => n > 0),
        `every plot has marks: ${marks.join(',')}`,
      );
      // Without the credential the same page gets nothing.
      const bare = await browser.context.newPage();
      await bare.goto(url.split('#')[0]);
      await sleep(1500); // a few polls
      assert.doesNotMatch((await bare.locator('#jobs').textContent()) ?? '', new RegExp(job));
    } finally {
      await browser.close();
      await c.stop();
    }
  },
);
