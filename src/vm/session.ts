// What `roam run`, `roam restore` and `roam cstrap` share: a running kernel in this
// process, given /dev/checkpoint, a control socket, and an exit that ends the
// process with the guest's exit code.
import fs from 'node:fs';
import path from 'node:path';
import { SUSPEND_FILE, type HostChannel } from './host-channel.js';
import { roamHome } from '../util/home.js';
import { PageCleaner } from '../checkpoint/cleaner.js';
import { CheckpointDevice } from '../checkpoint/device.js';
import { defaultKeyPath, fileTarget, loadKeySync, loadOrCreateKey } from '../format/index.js';
import {
  controlRequest,
  serveControl,
  type ControlRequest,
  type FinalEvent,
  type ProgressEvent,
  type VmRecord,
} from './control.js';
import type { Kernel } from '../guest/kernel.js';
import type { MigrateOptions, MigrateResult } from '../migrate/source.js';
import { HomeLink, moveAway, type EarlySession } from './home-link.js';
import type { Command } from '../guest/home-wire.js';

/** A VM built from a checkpoint or a migration stream, served under the name of its first program. */
export function serveRestored(
  kernel: Kernel,
  restoredFrom: string,
  host?: HostChannel,
  o: Pick<ServeInfo, 'deferControl' | 'key' | 'homeChannel'> = {},
): Promise<VmRecord> {
  const first = [...kernel.processes.values()][0];
  return serveVm(kernel, {
    program: first?.argv[0] ?? '?',
    args: first?.argv.slice(1) ?? [],
    restoredFrom,
    host,
    ...o,
  });
}

/** A VM ended from outside exits as a process ended by SIGTERM does. */
export const EXIT_STOPPED = 143;

type ServeInfo = {
  program: string;
  args: string[];
  restoredFrom?: string;
  host?: HostChannel;
  deferControl?: boolean;
  /** The VM's checkpoint key, if the caller holds it already (default: read from $ROAM_HOME). */
  key?: Buffer;
  /** Its session with home, connected already (an arrived VM). */
  homeChannel?: EarlySession;
};

/**
 * Give a VM its /dev/checkpoint, its control socket and the host's notices.
 * Until the first await (none when the key is given or exists) this is synchronous, so a
 * program started in the same turn finds its device. `deferControl`: the rest a
 * turn later (an arriving VM's first slice comes first; cold, this was a
 * millisecond of its downtime).
 */
export async function serveVm(kernel: Kernel, info: ServeInfo): Promise<VmRecord> {
  const key =
    info.key ?? loadKeySync(defaultKeyPath()) ?? (await loadOrCreateKey(defaultKeyPath()));
  const session = new VmSession(kernel, key, info);
  // A program that asked for a fork carries on once the child is confirmed (not when its first-instruction report is in).
  const fromProgram = (kind: 'migration' | 'fork', to: string): Promise<void> =>
    new Promise(
      (confirmed, failed) => void session.migrate({ kind, to, onConfirm: confirmed }).catch(failed),
    );
  kernel.device = new CheckpointDevice(kernel, { key, migrate: fromProgram });
  info.host?.onNotice((reason, seconds) => void session.onNotice(reason, seconds));
  session.wrapExit();
  if (kernel.relay && !kernel.relay.orphan) session.callHome(info.homeChannel);
  if (info.deferControl) await new Promise((r) => setImmediate(r));
  return session.open();
}

class VmSession {
  /** One checkpoint, migration or fork at a time. */
  private busy: Promise<unknown> | null = null;
  private control: ReturnType<typeof serveControl> | null = null;
  /** Already suspending (a second notice, or the daemon gone meanwhile). */
  private leaving = false;
  private released = false;
  /** The session with the VM's home, if it has one. */
  private link: HomeLink | null = null;

  constructor(
    private readonly kernel: Kernel,
    private readonly key: Buffer,
    private readonly info: ServeInfo,
  ) {}

  /** The VM's exit waits for a checkpoint under way (its requester is waiting for it) and closes the control socket. */
  wrapExit(): void {
    const prevExit = this.kernel.opts.onExit;
    this.kernel.opts.onExit = (code) => {
      void (async () => {
        while (this.busy) await this.busy;
        this.control?.close();
        prevExit?.(code);
      })();
    };
  }

  /** The VM ends here and now (`roam stop`, SIGTERM, SIGINT): its control socket and registry entry go with it. */
  end(why: string, code: number): void {
    this.kernel.log(`${why}; the VM ends`);
    this.release();
    // Let the control reply reach `roam stop` before the process goes.
    setTimeout(() => {
      this.control?.close();
      process.exit(code);
    }, 50);
  }

  open(): VmRecord {
    const { kernel, info } = this;
    for (const [sig, code] of [
      ['SIGTERM', 143],
      ['SIGINT', 130],
    ] as const)
      process.once(sig, () => this.end(`${sig}`, code));
    this.control = serveControl(
      { id: kernel.vmId, program: info.program, args: info.args, restoredFrom: info.restoredFrom },
      (req, emit) => this.handle(req, emit),
    );
    return this.control.record;
  }

  /** Run `run` alone; it may end its exclusivity early by calling `done` (a migration, once confirmed). */
  private async exclusive<T>(run: (done: () => void) => Promise<T>): Promise<T> {
    if (this.busy) throw new Error('a checkpoint or migration of this VM is already under way');
    let mine = true;
    const done = (): void => {
      if (mine) this.busy = null;
      mine = false;
    };
    const p = run(done);
    if (mine) this.busy = p.catch(() => {});
    try {
      return await p;
    } finally {
      done();
    }
  }

  /** A migration committed: this copy stops and lets go of its sockets and listeners at once (clients see the cut now and the destination can take over the ports; what was held back is dropped). */
  private release(): void {
    const { kernel } = this;
    if (this.released) return;
    this.released = true;
    this.link?.retire();
    for (const p of kernel.processes.values()) kernel.scheduler.paused.add(p.pid);
    kernel.close();
  }

  /** ... and ends, once the result has been reported. */
  private leave(res: MigrateResult): void {
    this.release();
    this.kernel.log(`migrated to ${res.to} as vm ${res.vmId}; this copy ends`);
    // Let the control reply reach `roam migrate` before the process goes.
    setTimeout(() => {
      this.control?.close();
      process.exit(0);
    }, 50);
  }

  async migrate(o: Omit<MigrateOptions, 'psk'> & { psk?: Buffer }): Promise<MigrateResult> {
    // The migration source is loaded when a migration starts, not at every VM's start-up.
    const { migrateVm } = await import('../migrate/source.js');
    const res = await this.exclusive((done) =>
      migrateVm(this.kernel, {
        ...o,
        psk: o.psk ?? this.key,
        // Committed: a migration's copy here stops; after a fork, the next checkpoint may begin.
        onConfirm: () => {
          if (o.kind === 'migration') this.release();
          else done();
          o.onConfirm?.();
        },
      }),
    );
    if (res.kind === 'migration') this.leave(res);
    return res;
  }

  /** Serve this VM at its boot URI until the destination pulls it (src/migrate/http-pull.ts). */
  private async servePull(
    listen: string,
    key: string | undefined,
    emit: (e: ProgressEvent) => void,
  ) {
    const { awaitPuller } = await import('../migrate/http-pull.js');
    return awaitPuller({
      listen,
      psk: key !== undefined ? Buffer.from(key, 'hex') : this.key,
      onListening: (uri) => {
        emit({ event: 'phase', message: `serving the VM at ${uri}` });
        // controlRequest hands an event on when the next one comes: this one makes the URI show now.
        emit({
          event: 'phase',
          message: 'waiting for a cstrap to pull it (roam cstrap --boot-uri)',
        });
      },
    });
  }

  private async handle(req: ControlRequest, emit: (e: ProgressEvent) => void): Promise<FinalEvent> {
    switch (req.op) {
      case 'blink':
        return {
          event: 'blink',
          ...(await this.kernel.blink.changes(req.epoch, req.since, req.waitMs)),
        };
      case 'blink-input':
        this.kernel.blink.pushInput(req.input);
        return {
          event: 'blink',
          epoch: this.kernel.blink.epoch,
          seq: this.kernel.blink.seq,
          messages: [],
        };
      case 'stop':
        // Once a checkpoint under way has finished: its requester is waiting for it.
        while (this.busy) await this.busy;
        this.end(`stopped by \`roam stop\``, EXIT_STOPPED);
        return { event: 'stopped', id: this.kernel.vmId };
      case 'status':
        return {
          event: 'status',
          id: this.kernel.vmId,
          pid: process.pid,
          processes: [...this.kernel.processes.values()].map((p) => ({
            pid: p.pid,
            argv: p.argv,
            status: p.status,
            exitCode: p.exitCode,
            memoryPages: p.status === 'exited' ? 0 : p.pageCount(),
          })),
          stdoutBytes: this.kernel.stdoutBytes,
        };
      case 'checkpoint': {
        const target = fileTarget(req.path, { format: req.format, key: this.key });
        const res = await this.exclusive(() =>
          new PageCleaner(this.kernel, target, {
            maxRounds: req.maxRounds,
            verifyAtFreeze: req.verify,
            onRound: (r) => emit({ event: 'round', ...r }),
            onProgress: (p) => emit({ event: 'progress', ...p }),
          }).run(),
        );
        return { event: 'done', path: req.path, ...res, rounds: res.rounds.length };
      }
      case 'migrate':
      case 'fork': {
        const res = await this.migrate({
          kind: req.op === 'fork' ? 'fork' : 'migration',
          to: req.to,
          maxDowntimeMs: req.maxDowntimeMs,
          maxBandwidth: req.maxBandwidth,
          throttle: req.throttle,
          compress: req.compress,
          maxRounds: req.maxRounds,
          verify: req.verify,
          home: req.home,
          windowMs: req.windowMs,
          psk: req.key !== undefined ? Buffer.from(req.key, 'hex') : undefined,
          connect: req.serve ? () => this.servePull(req.to, req.key, emit) : undefined,
          onRound: (r) => emit({ event: 'round', ...r }),
          onProgress: (p) => emit({ event: 'progress', ...p }),
          onPhase: (message) => emit({ event: 'phase', message }),
        });
        return { event: 'done', ...res };
      }
    }
  }

  /** Open the session with home: it relays clients and may order migrations. */
  callHome(pre?: EarlySession): void {
    this.link = new HomeLink(this.kernel, (c) => this.command(c), this.kernel.log, pre);
    this.link.start();
  }

  /** A command from home over the session. */
  private async command(c: Command): Promise<Record<string, unknown>> {
    if (c.op === 'stop') {
      setImmediate(() => {
        void (async () => {
          while (this.busy) await this.busy;
          this.end('stopped by its home', EXIT_STOPPED);
        })();
      });
      return {};
    }
    if (!c.to || !c.key) throw new Error(`${c.op} needs a destination and its key`);
    const res = await this.migrate({
      kind: c.op === 'fork' ? 'fork' : 'migration',
      to: c.to,
      psk: Buffer.from(c.key, 'hex'),
      home: c.arbiter,
      ...c.tuning,
    });
    const { to, vmId, freezeMs, downtimeMs, confirmMs, timeline, totalMs, bytes } = res;
    return {
      ...{ to, vmId, freezeMs, downtimeMs, confirmMs, timeline, totalMs, bytes },
      ...{ frozenAt: res.frozenAt, pagesSent: res.pagesSent, migration: res.migration },
      rounds: res.rounds.map(({ round, sent, wss, buffer, ms }) => ({
        round,
        sent,
        wss,
        buffer,
        ms,
      })),
    };
  }

  /**
   * The node tells this VM to go. With a home: ask it for a top-up (balance) or
   * for another node (drain, eviction, lifetime) and migrate there live; if home
   * does not answer within half the grace, or the moves fail, suspend to disk.
   */
  async onNotice(reason: string, seconds: number): Promise<void> {
    const link = this.link;
    if (this.leaving) return;
    if (link && reason !== 'host-gone') {
      this.leaving = true;
      this.kernel.log(`notice from the host (${reason}, ${seconds} s): asking home`);
      const done =
        reason === 'balance'
          ? await link.ask('topup', reason, seconds, Math.max(1_000, seconds * 500)).then((a) => {
              if (a?.ok) this.kernel.log('home topped this VM up; it runs on');
              return a?.ok === true;
            })
          : await moveAway(link, (o) => this.migrate(o), this.kernel.log, reason, seconds);
      this.leaving = false;
      if (done) return;
    }
    this.suspend(reason, seconds);
  }

  /** Told to go by the node daemon: suspend to disk (written aside, then renamed, so that the daemon never finds half a file) and end; a top-up revives it. */
  suspend(reason: string, seconds: number): void {
    if (this.leaving) return;
    this.leaving = true;
    this.kernel.log(`notice from the host (${reason}, ${seconds} s): suspending to disk`);
    const file = path.join(roamHome(), SUSPEND_FILE);
    const run = async () => {
      while (this.busy) await this.busy;
      await this.exclusive(() =>
        new PageCleaner(
          this.kernel,
          fileTarget(`${file}.tmp`, { format: 'stream', key: this.key }),
          {},
        ).run(),
      );
      fs.renameSync(`${file}.tmp`, file);
    };
    run().then(
      () => process.exit(0),
      (err: Error) => {
        this.kernel.log(`suspend failed: ${err.message}`);
        process.exit(1);
      },
    );
  }
}

export { controlRequest };
