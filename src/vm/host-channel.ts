// The VM's end of the narrow channel to the node daemon that started it (thesis
// 8.2: the host can only tell a VM to go). The daemon writes one-line commands
// to the VM's stdin:
//   boot KEY LOADER_SHA256 MEMORY_MIB   the job this warm, empty VM now serves
//   notice REASON SECONDS               balance, lifetime or evict: leave within SECONDS
// and reads lines from fd 3: the address the cstrap accepts uploads on, then
// `listen PORT` for each port a program listens on (under --netns the daemon
// publishes at most the token's count of them; nothing else is reachable), and
// `uploaded` once the VM has arrived, so that its upload port is published no more.
// What the VM does on a notice is its own policy, outside the trusted base;
// roam's is to suspend itself to disk (`suspend.ckpt` in its folder) and exit.
import fs from 'node:fs';
import { createInterface } from 'node:readline';

export interface BootConfig {
  key: Buffer;
  loaderHash: string;
  memoryMiB: number;
}
export type NoticeHandler = (reason: string, seconds: number) => void;

export const SUSPEND_FILE = 'suspend.ckpt';

export class HostChannel {
  /** Resolves when the daemon has given this VM its job. */
  readonly boot: Promise<BootConfig>;
  private notice: NoticeHandler = () => process.exit(0); // nothing to keep yet
  private pending: [string, number] | null = null;

  constructor(
    input: NodeJS.ReadableStream = process.stdin,
    private readonly out = 3,
  ) {
    let booted!: (c: BootConfig) => void;
    this.boot = new Promise((r) => (booted = r));
    const lines = createInterface({ input });
    lines.on('line', (line) => {
      const [op, a, b, c] = line.trim().split(/\s+/);
      if (op === 'boot' && /^[0-9a-f]{64}$/.test(a ?? '') && /^[0-9a-f]{64}$/.test(b ?? '')) {
        booted({ key: Buffer.from(a, 'hex'), loaderHash: b, memoryMiB: Number(c) || 0 });
      } else if (op === 'notice') {
        this.pending = [a ?? 'evict', Number(b) || 0];
        this.notice(...this.pending);
      }
    });
    // The daemon is gone: nobody meters or can revive this VM any more.
    lines.once('close', () => this.notice('host-gone', 0));
  }

  /** Tell the daemon where this cstrap accepts (the first line it reads). */
  ready(addr: string): void {
    this.say(`${addr}\n`);
  }

  /** The VM has arrived: its upload port may be closed to the world (a VM can only ask for less). */
  uploaded(): void {
    this.say('uploaded\n');
  }

  /** Ask the daemon to publish a port a program listens on. */
  listening(port: number): void {
    this.say(`listen ${port}\n`);
  }

  private say(line: string): void {
    try {
      fs.writeSync(this.out, line);
    } catch {
      /* the daemon is gone */
    }
  }

  /** From now on notices go to `fn` (a notice that came before is handed over at once). */
  onNotice(fn: NoticeHandler): void {
    this.notice = fn;
    if (this.pending) fn(...this.pending);
  }
}
