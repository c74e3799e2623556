// Network namespaces (issue 13), as root with `roam node --netns`: each VM process
// runs in a namespace of its own, joined to the host by a veth pair (rvSLOT on the
// host, eth0 in the VM, a /30 of 100.64.0.0/10 that no other VM holds). Each daemon
// has its own nftables table `ip roam_TAG` and namespaces `roam-TAG-VMID` (TAG from
// its --state folder), so daemons on one host never touch each other's. The
// table lets a VM out to the world (masqueraded), and drops
// everything it sends to the host itself (every address: loopback services, the
// broker, packetd) or to another VM. Nothing reaches a VM but its published ports:
// host address:port pairs in the map `pub`, DNATed to the VM, which forwards them to
// its own loopback (where its cstrap and its programs listen). The daemon publishes
// the cstrap's upload port and at most the token's `ports` more, each held on the
// host by a listening socket of the daemon, so that no host service is shadowed.
// This is what enforces `ports`: a hostile VM process may listen on whatever it
// likes inside its namespace, and no one outside reaches it.
import { execFileSync } from 'node:child_process';
import { createHash, randomInt } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const run = (cmd: string, args: string[], input?: string) =>
  void execFileSync(cmd, args, { input, stdio: ['pipe', 'ignore', 'pipe'], timeout: 10_000 });
const tryRun = (cmd: string, args: string[]) => {
  try {
    run(cmd, args);
  } catch {
    /* already gone */
  }
};

/** Why --netns cannot work here (a tool missing, or no single IPv4 --vm-host), or null. */
export function netnsProblem(vmHost: string): string | null {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin']);
  const tool = ['ip', 'nft', 'nsenter', 'setpriv'].find(
    (t) => !dirs.some((d) => fs.existsSync(`${d}/${t}`)),
  );
  if (tool) return `--netns needs ${tool} (apt-get install iproute2 nftables util-linux)`;
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(vmHost) || vmHost === '0.0.0.0')
    return '--netns publishes ports on one IPv4 address: give it as --vm-host';
  return null;
}

/** A daemon's own names: its table `ip roam_TAG` and its namespaces `roam-TAG-VMID`. */
export const netTag = (stateDir: string): string =>
  createHash('sha256').update(path.resolve(stateDir)).digest('hex').slice(0, 8);

// Every daemon's table treats every roam VM's link (rv*) alike: none reaches the host or another VM.
const VM_IF = 'rv*';
const hostRules = (t: string) => `table ip ${t}
delete table ip ${t}
table ip ${t} {
  map pub { type ipv4_addr . inet_service : ipv4_addr . inet_service; }
  chain prer { type nat hook prerouting priority dstnat; fib daddr type local dnat ip addr . port to ip daddr . tcp dport map @pub; }
  chain outn { type nat hook output priority -100; fib daddr type local dnat ip addr . port to ip daddr . tcp dport map @pub; }
  chain postr { type nat hook postrouting priority srcnat;
    ip saddr 100.64.0.0/10 oifname != "${VM_IF}" masquerade; oifname "${VM_IF}" ip saddr 127.0.0.0/8 masquerade; }
  chain inp { type filter hook input priority 0; iifname "${VM_IF}" ct state established,related accept; iifname "${VM_IF}" drop; }
  chain fwdf { type filter hook forward priority 0; iifname "${VM_IF}" oifname "${VM_IF}" drop;
    oifname "${VM_IF}" ct state established,related accept; oifname "${VM_IF}" ct status dnat accept; oifname "${VM_IF}" drop; }
  chain outf { type filter hook output priority 0;
    oifname "${VM_IF}" ct state established,related accept; oifname "${VM_IF}" ct status dnat accept; oifname "${VM_IF}" drop; }
}
`;
// In the VM's namespace: what comes in on eth0 (only what the host let through) goes to its loopback.
const VM_RULES = `table ip roam { chain pre { type nat hook prerouting priority dstnat; iifname "eth0" meta l4proto tcp dnat to 127.0.0.1; }; }`;

// This daemon's namespaces (its VMs' ids) that are on the host now.
const ours = (tag: string) =>
  (fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns') : []).flatMap(
    (ns) => new RegExp(`^roam-${tag}-(vm-[0-9a-f]{12})$`).exec(ns)?.slice(1) ?? [],
  );

/** At start-up: this daemon's table (replacing the one a crash left), forwarding on, and its
 * namespaces of VMs not in `keep` (left by a crash) removed. Another daemon's are not touched. */
export function netnsSetup(tag: string, keep: Set<string>): void {
  run('nft', ['-f', '-'], hostRules(`roam_${tag}`));
  fs.writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
  for (const id of ours(tag))
    if (!keep.has(id)) tryRun('ip', ['netns', 'del', `roam-${tag}-${id}`]);
}

/** On exit: this daemon's table and namespaces (a VM still exiting keeps its own until it has). */
export function netnsTeardown(tag: string): void {
  for (const id of ours(tag)) tryRun('ip', ['netns', 'del', `roam-${tag}-${id}`]);
  tryRun('nft', ['delete', 'table', 'ip', `roam_${tag}`]);
}

const ip4 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

export class VmNet {
  readonly ns: string;
  readonly addr: string; // the VM's eth0
  private readonly held = new Map<number, net.Server>(); // host port -> the daemon's socket on it
  private readonly wanted = new Set<number>(); // program ports asked for: published or waiting
  limit = 0; // program ports it may publish (the token's), beyond the cstrap's

  private readonly table: string;
  constructor(
    vmId: string,
    private readonly host: string,
    tag: string,
  ) {
    this.ns = `roam-${tag}-${vmId}`;
    this.table = `roam_${tag}`;
    tryRun('ip', ['netns', 'del', this.ns]); // a revived VM's namespace from before a restart
    run('ip', ['netns', 'add', this.ns]);
    // A /30 of 100.64.0.0/10 (2^20 slots), claimed by making the host's link, named by its
    // slot: the kernel refuses a name twice, so no two VMs on the host share one, whichever
    // daemon's they are (a slot taken: another, at random).
    let vif = '',
      base = 0;
    for (let tries = 1; !vif; tries++) {
      const slot = randomInt(1 << 20),
        name = `rv${slot.toString(16).padStart(5, '0')}`;
      try {
        run('ip', `link add ${name} type veth peer name eth0 netns ${this.ns}`.split(' '));
        [vif, base] = [name, 0x64400000 + slot * 4];
      } catch (e) {
        if (tries === 8) throw e;
      }
    }
    const gw = ip4(base + 1);
    this.addr = ip4(base + 2);
    run('ip', ['-b', '-'], `addr add ${gw}/30 dev ${vif}\nlink set ${vif} up\n`);
    fs.writeFileSync(`/proc/sys/net/ipv4/conf/${vif}/route_localnet`, '1'); // local clients of 127.0.0.1
    // No IPv6 on the link (the table is IPv4): no link-local address to reach the host by.
    fs.writeFileSync(`/proc/sys/net/ipv6/conf/${vif}/disable_ipv6`, '1');
    run(
      'ip',
      ['-n', this.ns, '-b', '-'],
      `link set lo up\naddr add ${this.addr}/30 dev eth0\nlink set eth0 up\nroute add default via ${gw}\n`,
    );
    this.enter([
      'sysctl',
      '-qw',
      'net.ipv4.conf.eth0.route_localnet=1',
      'net.ipv6.conf.eth0.disable_ipv6=1',
    ]);
    this.enter(['nft', '-f', '-'], VM_RULES);
  }

  private enter(cmd: string[], input?: string): void {
    run('nsenter', [`--net=/run/netns/${this.ns}`, '--', ...cmd], input);
  }

  /** The command line that starts `argv` in this namespace, as uid (setpriv drops every group). */
  command(argv: string[], uid?: number): string[] {
    const as =
      uid === undefined
        ? []
        : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--'];
    return ['nsenter', `--net=/run/netns/${this.ns}`, '--', ...as, ...argv];
  }

  /** May the VM have program port `port` published? At most `limit` of them, each asked once. */
  want(port: number): boolean {
    if (this.wanted.has(port) || this.wanted.size >= this.limit) return false;
    this.wanted.add(port);
    return true;
  }

  /** Publish the VM's port on the host (hostPort 0: any free one); the host port, or null. */
  async publish(hostPort: number, vmPort: number): Promise<number | null> {
    const s = net.createServer((c) => c.destroy()); // never reached: DNAT comes first
    const port = await new Promise<number | null>((r) =>
      s
        .once('error', () => r(null))
        .listen(hostPort, this.host, () => r((s.address() as net.AddressInfo).port)),
    );
    if (port === null) return null;
    this.held.set(port, s);
    const el = `{ ${this.host} . ${port} : ${this.addr} . ${vmPort} }`;
    run('nft', ['add', 'element', 'ip', this.table, 'pub', el]);
    return port;
  }

  /** No longer publish host port `port` (the VM asked: it can only lower its own exposure). */
  unpublish(port: number): void {
    tryRun('nft', ['delete', 'element', 'ip', this.table, 'pub', `{ ${this.host} . ${port} }`]);
    this.held.get(port)?.close();
    this.held.delete(port);
  }

  close(): void {
    for (const port of [...this.held.keys()]) this.unpublish(port);
    tryRun('ip', ['netns', 'del', this.ns]); // takes the veth pair with it
  }
}
