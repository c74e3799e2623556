// Headless Chromium for the viewer's tests and the benchmark: Debian's chromium,
// driven by playwright-core (which downloads no browser of its own). WebGL2 runs
// on SwiftShader, the CPU renderer, since these machines have no GPU.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.ROAM_CHROMIUM ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here, or null if they can. */
export function noBrowser(): string | null {
  return fs.existsSync(CHROMIUM)
    ? null
    : `no ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium) to run the viewer's browser tests`;
}

/** A browser with a new, empty profile folder (removed on close). */
export async function launch(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roam-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-gl=angle',
      '--use-angle=swiftshader',
      '--enable-unsafe-swiftshader',
    ],
  });
  return {
    context,
    close: async () => {
      await context.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
