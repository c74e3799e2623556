import type { Command } from 'commander';
// Every subcommand module exports `register(program)`; add new ones here.
export const commands: Array<(program: Command) => void> = [];
