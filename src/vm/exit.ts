// How a VM process ends: with its programs' exit code, once output is flushed.
export function vmExit(code: number): void {
  process.exitCode = code;
  setImmediate(() => process.exit(code));
}
