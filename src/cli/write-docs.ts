// `npm run docs`: writes docs/cli.md from the CLI definitions.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliReference } from './docs.js';
import { buildProgram } from './program.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
fs.writeFileSync(path.join(root, 'docs/cli.md'), cliReference(await buildProgram()));
