// What the agent does to its node, always through the node's ordinary doors:
// the daemon's datagrams (BOOT a token, STATUS and REFUND a job), the cstrap a
// boot token opens (a VM uploaded into it, as `roam run --to` does), and a
// running VM's control socket (a live migration, as `roam migrate` does).
import fs from 'node:fs';
import path from 'node:path';
import { request } from '../host/client.js';
import { STATES } from '../host/packetd.js';
import { REASONS } from '../tokens/reasons.js';
import { bootVm } from '../vm/create.js';
import { uploadVm } from '../vm/upload.js';
import { controlRequest, type VmRecord } from '../vm/control.js';
import { RoamError } from '../util/errors.js';
import { formatHostPort, parseHostPort } from '../util/address.js';
import { tellCstrap } from '../vm/boot-uri.js';

export type JobState = (typeof STATES)[number] | 'unknown';

export class NodeError extends RoamError {}

export class NodeDoor {
  constructor(
    /** The daemon's UDP address. */
    readonly daemon: string,
    /** The daemon's --state folder: one folder per VM. */
    readonly stateDir: string,
    /** The agent's own folder (programs, job keys). */
    readonly cacheDir: string,
  ) {
    fs.mkdirSync(path.join(cacheDir, 'programs'), { recursive: true });
    fs.mkdirSync(path.join(cacheDir, 'keys'), { recursive: true, mode: 0o700 });
  }

  /** The daemon answers STATUS and REFUND only under a MAC with the job's key. */
  async status(jobId: string, keyHex: string): Promise<JobState> {
    const m = await request(
      this.daemon,
      { type: 'STATUS', jobId: Buffer.from(jobId, 'hex') },
      { key: Buffer.from(keyHex, 'hex') },
    );
    if (m.type === 'BALANCE') return STATES[m.state] ?? 'unknown';
    if (m.type === 'REFUSED' && REASONS[m.reason] === 'unknown-job') return 'unknown';
    throw new NodeError('node-status', `node ${this.daemon} answered STATUS with ${m.type}`);
  }

  /** BOOT a token: the cstrap's address, or why the node refused. */
  async boot(token: string): Promise<{ vm: string; cstrap: string } | { refused: string }> {
    const m = await request(this.daemon, { type: 'BOOT', token: Buffer.from(token, 'base64') });
    if (m.type === 'REFUSED') return { refused: REASONS[m.reason] ?? 'unknown' };
    if (m.type !== 'ACCEPTED')
      throw new NodeError('node-boot', `node ${this.daemon} answered BOOT with ${m.type}`);
    return { vm: m.vmId, cstrap: m.addr };
  }

  async refund(jobId: string, keyHex: string): Promise<void> {
    await request(
      this.daemon,
      { type: 'REFUND', jobId: Buffer.from(jobId, 'hex') },
      { key: Buffer.from(keyHex, 'hex') },
    );
  }

  /** The control record of the VM running in the daemon's folder `vm`, if a VM is being served there. */
  served(vm: string): VmRecord | null {
    if (!/^[A-Za-z0-9._-]{1,80}$/.test(vm)) return null;
    const dir = path.join(this.stateDir, vm, 'vms');
    let names: string[];
    try {
      names = fs.readdirSync(dir).filter((n) => n.endsWith('.json'));
    } catch {
      return null;
    }
    for (const n of names) {
      try {
        const r = JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')) as VmRecord & {
          kind?: string;
        };
        if (r.kind === 'cstrap') continue; // an empty cstrap still waiting for its VM
        process.kill(r.pid, 0); // still there
        return r;
      } catch {
        /* gone, or being written */
      }
    }
    return null;
  }

  keyFile(jobId: string, keyHex: string): string {
    const f = path.join(this.cacheDir, 'keys', `${jobId}.key`);
    fs.writeFileSync(f, Buffer.from(keyHex, 'hex'), { mode: 0o600 });
    return f;
  }

  programFile(sha256: string): string {
    return path.join(this.cacheDir, 'programs', `${sha256}.wasm`);
  }

  /** Build the VM here (nothing runs) and upload it into the cstrap, keyed with the job's key. */
  async upload(
    cstrap: string,
    jobId: string,
    keyHex: string,
    spec: {
      programs: Array<{ file: string; args: string[] }>;
      memoryMiB: number;
      tcplisten: string[];
    },
  ): Promise<void> {
    const [main, ...also] = spec.programs;
    const kernel = await bootVm(main.file, main.args, {
      tcplisten: spec.tcplisten,
      memoryMiB: spec.memoryMiB,
      also: also.map((p) => ({ program: p.file, args: p.args })),
      upload: true,
    });
    await uploadVm(kernel, cstrap, { keyFile: this.keyFile(jobId, keyHex) });
  }

  /**
   * Move the VM live by pull (thesis 8.3: the destination opens the connection to
   * the source): it serves itself at a boot URI on this node, keyed with the
   * destination job's key, until the destination's cstrap has pulled it. `serving`
   * hears the URI (the agent hands it to the control service). The migration is the
   * VM's own, exactly-once as a push.
   */
  async migrate(
    vm: VmRecord,
    keyHex: string,
    serving: (uri: string) => Promise<void>,
  ): Promise<void> {
    let told: Promise<void> = Promise.resolve();
    const host = parseHostPort(this.daemon).host;
    await controlRequest(
      vm,
      { op: 'migrate', to: formatHostPort(host, 0), serve: true, key: keyHex, verify: false },
      (e) => {
        const m = e.event === 'phase' ? /serving the VM at (http:\S+)/.exec(e.message) : null;
        if (m) told = serving(m[1]);
      },
    );
    await told;
  }

  /** Tell the cstrap at `cstrap` (this node's, over its upload channel) to pull a VM from `uri`; resolves once it runs. */
  pullInto(cstrap: string, keyHex: string, uri: string): Promise<void> {
    return tellCstrap(cstrap, Buffer.from(keyHex, 'hex'), uri);
  }
}
