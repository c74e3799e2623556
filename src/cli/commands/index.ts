import type { Command } from 'commander';
import { register as run } from './run.js';
import { register as checkpoint } from './checkpoint.js';
import { register as restore } from './restore.js';
import { register as inspect } from './inspect.js';
import { register as ps } from './ps.js';
import { register as broker } from './broker.js';
import { register as tokens } from './tokens.js';
import { register as boot } from './boot.js';
import { register as cstrap } from './cstrap.js';
import { register as migrate } from './migrate.js';
import { register as view } from './view.js';
import { register as stop } from './stop.js';
import { register as logs } from './logs.js';
import { register as home } from './home.js';
import { register as submit } from './submit.js';
import { register as pulse } from './pulse.js';
import { register as control } from './control.js';
import { register as agent } from './agent.js';
// Every subcommand module exports `register(program)`; add new ones here.
export const commands: Array<(program: Command) => void> = [
  run,
  checkpoint,
  restore,
  inspect,
  ps,
  broker,
  tokens,
  boot,
  cstrap,
  migrate,
  view,
  stop,
  logs,
  home,
  submit,
  pulse,
  control,
  agent,
];
