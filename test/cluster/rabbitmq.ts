/**
 * A three-node RabbitMQ cluster of a test's own, on loopback, next to the machine's default node (rabbit@localhost
 * on 5672), which it never touches.
 *
 * Everything of the cluster is its own: a temporary directory with a HOME (and in it the Erlang cookie, mode 400),
 * each node's mnesia, logs, pid file and rabbitmq.conf, an empty rabbitmq-env.conf (so /etc/rabbitmq/rabbitmq-env.conf,
 * which names the default node, is never read) and an enabled-plugins file of `[]` (no management or Prometheus
 * listener); free ports for AMQP, for distribution and for the CLI's distribution range; and an epmd of its own on
 * a free port (ERL_EPMD_PORT), so the shared epmd on 4369 is neither used nor stopped. The scripts are called from
 * /usr/lib/rabbitmq/bin: the /usr/sbin wrappers switch to the rabbitmq user and write the default node's startup log.
 *
 * Each node's server runs in a process group of its own; `destroyCluster` (and, when the test process ends otherwise,
 * its exit and SIGINT/SIGTERM handlers) kills those groups and the epmd, by pid, and removes the directory. Every
 * process of a cluster carries its directory in its environment (PAYOUTS_TEST_CLUSTER): a test process killed too
 * hard to clean up (SIGKILL) leaves a directory whose owner is gone, and the next `startCluster` kills exactly the
 * processes so marked and removes it. Nothing else is ever killed.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, sleep } from '../../bench/lib.js';

const BIN = '/usr/lib/rabbitmq/bin';
const EPMD = '/usr/bin/epmd';
/** Loopback only: distribution listens on 127.0.0.1, like the default node's (its rabbitmq-env.conf says so). */
const LOOPBACK_DIST = '-kernel inet_dist_use_interface {127,0,0,1}';
/**
 * Every process of a cluster (servers, VMs, epmd, CLI calls) has this variable set to the cluster's directory in
 * its environment: how cleanup finds them, and only them, even those of a test process that was itself killed.
 */
const MARK = 'PAYOUTS_TEST_CLUSTER';
/** In a cluster's directory: the pid of the test process that owns it. */
const OWNER_FILE = 'owner.pid';
/** How many ports the CLI tools may use for their own distribution listener (one per concurrent command). */
const CTL_PORTS = 10;

export class ClusterError extends Error {
  override name = 'ClusterError';
}

export interface ClusterNode {
  /** `payouts-test-a@localhost` and so on. */
  name: string;
  /** `a`, `b`, `c`: a short label for what we print. */
  label: string;
  amqpPort: number;
  distPort: number;
  dir: string;
  pidFile: string;
  /** The running `rabbitmq-server` script (a process group of its own), while one runs. */
  server: ChildProcess | undefined;
}

export interface Cluster {
  root: string;
  home: string;
  epmdPort: number;
  ctlPortMin: number;
  nodes: ClusterNode[];
  epmd: ChildProcess;
}

/** `host:port` of every node, as AMQP_HOSTS takes them. */
export function amqpHosts(cluster: Cluster): string {
  return cluster.nodes.map((node) => `127.0.0.1:${node.amqpPort}`).join(',');
}

/** A URL of the first node: credentials and vhost for AMQP_URL (the hosts come from AMQP_HOSTS). */
export function amqpUrl(cluster: Cluster): string {
  return `amqp://guest:guest@127.0.0.1:${cluster.nodes[0]!.amqpPort}`;
}

export function nodeByName(cluster: Cluster, name: string): ClusterNode {
  const node = cluster.nodes.find((candidate) => candidate.name === name);
  if (!node) throw new ClusterError(`${name} is not a node of this cluster`);
  return node;
}

// ---------------------------------------------------------------------------------------------- cleanup

const clusters = new Set<Cluster>();

/** Kills every VM and the epmd of `cluster`, by process group and pid, and removes its directory. Synchronous. */
function killEverything(cluster: Cluster): void {
  for (const node of cluster.nodes) {
    const pid = vmPid(node);
    if (pid !== undefined) signal(pid, 'SIGKILL');
    if (node.server?.pid !== undefined) signal(-node.server.pid, 'SIGKILL');
  }
  if (cluster.epmd.pid !== undefined) signal(cluster.epmd.pid, 'SIGKILL');
  killMarked(cluster.root);
  rmSync(cluster.root, { recursive: true, force: true });
  clusters.delete(cluster);
}

/** SIGKILL to every process whose environment marks it as one of the cluster in `root` (from /proc). */
function killMarked(root: string): number {
  const mark = `${MARK}=${root}`;
  let killed = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let environ: string[];
    try {
      environ = readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0');
    } catch {
      continue; // gone, or not ours to read
    }
    if (environ.includes(mark)) {
      signal(Number(entry), 'SIGKILL');
      killed += 1;
    }
  }
  return killed;
}

/**
 * Clusters left by a test process that was killed too hard for its handlers to run (SIGKILL, a lost machine
 * session): their processes are killed and their directories removed. A directory whose owner still runs is left.
 */
function sweepOrphans(prefix: string): void {
  for (const entry of readdirSync(tmpdir())) {
    if (!entry.startsWith(`${prefix}-rabbitmq-`)) continue;
    const root = join(tmpdir(), entry);
    let owner: number;
    try {
      owner = Number(readFileSync(join(root, OWNER_FILE), 'utf8'));
    } catch {
      continue; // no owner file yet: a cluster being created right now, or not one of ours
    }
    if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) continue;
    const killed = killMarked(root);
    rmSync(root, { recursive: true, force: true });
    process.stderr.write(`removed an orphaned test cluster (${root}, ${killed} processes killed)\n`);
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

process.on('exit', () => {
  for (const cluster of clusters) killEverything(cluster);
});
for (const name of ['SIGINT', 'SIGTERM'] as const) {
  process.on(name, () => {
    for (const cluster of clusters) killEverything(cluster);
    // Another handler (the bench harness's) may still stop its own children and exit; if none does, we exit.
    if (process.listenerCount(name) === 1) process.exit(130);
  });
}

/**
 * Marks every process this test process starts from now on (its service roles, commands) as the cluster's: they are
 * killed with it, also by the sweep of a later run when this one died too hard to clean up.
 */
export function markChildren(cluster: Cluster): void {
  Object.assign(process.env, markEnv(cluster));
}

/** The mark for the environment of a process started with an environment of its own (not this process's). */
export function markEnv(cluster: Cluster): Record<string, string> {
  return { [MARK]: cluster.root };
}

/**
 * Stops the cluster for good: every VM (SIGKILL: nothing of it is kept), then, once their servers have exited and
 * reaped them (a few seconds at most), the process groups, the epmd and the directory. Safe to call twice.
 */
export async function destroyCluster(cluster: Cluster): Promise<void> {
  for (const node of cluster.nodes) {
    const pid = vmPid(node);
    if (pid !== undefined) signal(pid, 'SIGKILL');
  }
  const until = Date.now() + 5_000;
  while (cluster.nodes.some((node) => node.server) && Date.now() < until) await sleep(50);
  killEverything(cluster);
}

// ---------------------------------------------------------------------------------------------- ports

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

/** The lowest port the cluster's listeners are given. */
const LOWEST_PORT = 10_000;

/**
 * The first port of the kernel's range for the local ends of outgoing connections. A node's ports are closed while
 * it is stopped (`stop_app`, a kill, a restart), and a port inside that range can then become the local end of any
 * connection on the machine, so that the node cannot listen on it again (`eaddrinuse`): the ports are chosen below.
 */
function ephemeralLow(): number {
  const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
    .trim()
    .split(/\s+/)
    .map(Number);
  if (!low || low < LOWEST_PORT + 1_000)
    throw new ClusterError(
      `the kernel's local port range starts at ${low}: no room below it for the cluster`,
    );
  return low;
}

/**
 * `count` consecutive free ports on loopback (the CLI's distribution range must be one range), from `LOWEST_PORT`
 * to below `below` (the kernel's range for outgoing connections).
 */
async function freeRange(count: number, taken: Set<number>, below: number): Promise<number> {
  const span = below - LOWEST_PORT - count;
  for (let tries = 0; tries < 200; tries += 1) {
    const first = LOWEST_PORT + Math.floor(Math.random() * span);
    const ports = Array.from({ length: count }, (_, i) => first + i);
    if (ports.some((port) => taken.has(port))) continue;
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) {
      ports.forEach((port) => taken.add(port));
      return first;
    }
  }
  throw new ClusterError(`no ${count} consecutive free ports found`);
}

// ---------------------------------------------------------------------------------------------- commands

/** The environment of every script call for `node`: the cluster's own files, ports and epmd, nothing of /etc. */
function nodeEnv(cluster: Cluster, node: ClusterNode): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    [MARK]: cluster.root,
    HOME: cluster.home,
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    ERL_EPMD_PORT: String(cluster.epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_NODENAME: node.name,
    RABBITMQ_CONF_ENV_FILE: join(cluster.root, 'rabbitmq-env.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(cluster.root, 'enabled_plugins'),
    RABBITMQ_CONFIG_FILE: join(node.dir, 'rabbitmq.conf'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(node.dir, 'advanced.config'),
    RABBITMQ_MNESIA_BASE: join(node.dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(node.dir, 'log'),
    RABBITMQ_PID_FILE: node.pidFile,
    RABBITMQ_DIST_PORT: String(node.distPort),
    RABBITMQ_CTL_DIST_PORT_MIN: String(cluster.ctlPortMin),
    RABBITMQ_CTL_DIST_PORT_MAX: String(cluster.ctlPortMin + CTL_PORTS - 1),
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: LOOPBACK_DIST,
    RABBITMQ_CTL_ERL_ARGS: LOOPBACK_DIST,
  };
}

/**
 * Runs a CLI tool (`rabbitmqctl`, `rabbitmq-queues`…) against `node`, asynchronously (the test's other work goes
 * on meanwhile); resolves with its stdout, rejects with its output when it fails or outlasts `timeoutMs`.
 */
export function cli(
  cluster: Cluster,
  node: ClusterNode,
  tool: string,
  args: string[],
  timeoutMs = 60_000,
): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(join(BIN, tool), ['-n', node.name, ...args], {
      cwd: cluster.root,
      env: nodeEnv(cluster, node),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', fail);
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      if (code === 0) done(stdout);
      else
        fail(
          new ClusterError(
            `${tool} -n ${node.name} ${args.join(' ')} exited with ${code ?? sig}:\n${stdout}${stderr}`.trim(),
          ),
        );
    });
  });
}

// ---------------------------------------------------------------------------------------------- nodes

/** The OS pid of a node's Erlang VM, from the pid file the node writes when it starts; undefined when none. */
export function vmPid(node: ClusterNode): number | undefined {
  try {
    const pid = Number(readFileSync(node.pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Starts a node's server (a process group of its own) with its own directories: a known node rejoins its cluster. */
function spawnServer(cluster: Cluster, node: ClusterNode): void {
  rmSync(node.pidFile, { force: true });
  const server = spawn(join(BIN, 'rabbitmq-server'), [], {
    cwd: node.dir,
    env: nodeEnv(cluster, node),
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  node.server = server;
  server.on('exit', () => {
    if (node.server === server) node.server = undefined;
  });
}

/** Waits until the node's application runs (`rabbitmqctl await_startup`), failing when its server is gone. */
export async function awaitNode(cluster: Cluster, node: ClusterNode, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    // await_startup fails at once while the VM is not up yet (no pid file): so we retry until the deadline.
    const left = until - Date.now();
    if (left <= 0)
      throw new ClusterError(`${node.name} did not start within ${timeoutMs} ms (logs: ${node.dir}/log)`);
    if (!node.server) throw new ClusterError(`${node.name}'s server exited (logs: ${node.dir}/log)`);
    try {
      await cli(cluster, node, 'rabbitmqctl', ['await_startup', '--timeout', String(Math.ceil(left / 1000))]);
      return;
    } catch {
      await sleep(1000);
    }
  }
}

/** Starts a stopped (or killed) node again with the same directories, and waits until it runs. */
export async function startNode(cluster: Cluster, node: ClusterNode): Promise<void> {
  if (node.server) throw new ClusterError(`${node.name} is already running`);
  spawnServer(cluster, node);
  await awaitNode(cluster, node);
}

/** SIGKILL to the node's Erlang VM, as a crash would: no goodbye to the cluster or the clients. */
export async function killNode(node: ClusterNode): Promise<void> {
  const pid = vmPid(node);
  if (pid === undefined) throw new ClusterError(`${node.name} has no pid file`);
  process.kill(pid, 'SIGKILL');
  await waitForServerExit(node, 30_000);
}

/** A graceful stop of the whole node (`rabbitmqctl stop`), waited for until its server has exited. */
export async function stopNode(cluster: Cluster, node: ClusterNode): Promise<void> {
  await cli(cluster, node, 'rabbitmqctl', ['stop'], 120_000);
  await waitForServerExit(node, 60_000);
}

async function waitForServerExit(node: ClusterNode, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (node.server && Date.now() < until) await sleep(100);
  if (node.server) throw new ClusterError(`${node.name}'s server did not exit within ${timeoutMs} ms`);
  const pid = vmPid(node);
  if (pid !== undefined && isAlive(pid))
    throw new ClusterError(`${node.name}'s VM (pid ${pid}) is still alive`);
}

/**
 * Waits until stopping `node` would leave every quorum queue its quorum (`rabbitmq-queues
 * check_if_node_is_quorum_critical`): after a restart, the restarted node's replicas are back and caught up.
 */
export async function awaitNotQuorumCritical(
  cluster: Cluster,
  node: ClusterNode,
  timeoutMs = 120_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      await cli(cluster, node, 'rabbitmq-queues', ['check_if_node_is_quorum_critical']);
      return;
    } catch (error) {
      if (Date.now() > until)
        throw new ClusterError(`${node.name} still quorum critical after ${timeoutMs} ms: ${String(error)}`);
      await sleep(1000);
    }
  }
}

/** Names of the running nodes of the cluster, as `asker` sees them. */
export async function runningNodes(cluster: Cluster, asker: ClusterNode): Promise<string[]> {
  const out = await cli(cluster, asker, 'rabbitmqctl', ['cluster_status', '--formatter', 'json']);
  const status = JSON.parse(out) as { running_nodes?: string[] };
  return status.running_nodes ?? [];
}

/** Waits until `asker` sees every node of the cluster running. */
export async function awaitAllRunning(
  cluster: Cluster,
  asker: ClusterNode,
  timeoutMs = 120_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  let seen: string[] = [];
  while (Date.now() < until) {
    seen = await runningNodes(cluster, asker).catch(() => []);
    if (cluster.nodes.every((node) => seen.includes(node.name))) return;
    await sleep(1000);
  }
  throw new ClusterError(`not every node running after ${timeoutMs} ms: ${seen.join(', ') || 'none'}`);
}

export interface QueueInfo {
  /** The node whose replica leads the quorum queue. */
  leader: ClusterNode;
  /** Messages in the queue, ready and unacknowledged. */
  messages: number;
}

/**
 * The leader of quorum queue `queue` and its message count, as a running node sees them (`rabbitmqctl list_queues
 * name leader messages`: on 3.10 `leader` is a column of quorum queues).
 */
export async function queueInfo(cluster: Cluster, queue: string): Promise<QueueInfo> {
  const asker = cluster.nodes.find((node) => node.server);
  if (!asker) throw new ClusterError('no node runs');
  const out = await cli(cluster, asker, 'rabbitmqctl', [
    'list_queues',
    'name',
    'leader',
    'messages',
    '--formatter',
    'json',
    '--quiet',
  ]);
  const rows = JSON.parse(out) as { name: string; leader: string; messages: number }[];
  const row = rows.find((candidate) => candidate.name === queue);
  if (!row) throw new ClusterError(`no queue ${queue} on ${asker.name}`);
  return { leader: nodeByName(cluster, row.leader), messages: row.messages };
}

// ---------------------------------------------------------------------------------------------- the cluster

function writeNodeFiles(node: ClusterNode): void {
  mkdirSync(join(node.dir, 'mnesia'), { recursive: true });
  mkdirSync(join(node.dir, 'log'), { recursive: true });
  writeFileSync(
    join(node.dir, 'rabbitmq.conf'),
    [
      `listeners.tcp.1 = 127.0.0.1:${node.amqpPort}`,
      // What the nodes write goes to their own log files only.
      'log.console = false',
      `log.file.level = info`,
      '',
    ].join('\n'),
  );
}

/**
 * Starts three nodes (`payouts-test-a@localhost`, `-b`, `-c`) on free ports, joins b and c to a (`stop_app`,
 * `join_cluster`, `start_app`) and waits until a sees all three running. On failure everything started is killed.
 */
export async function startCluster(prefix = 'payouts-test'): Promise<Cluster> {
  if (!existsSync(join(BIN, 'rabbitmq-server')) || !existsSync(EPMD))
    throw new ClusterError(`${BIN}/rabbitmq-server or ${EPMD} not found: is RabbitMQ installed?`);
  sweepOrphans(prefix);
  const root = mkdtempSync(join(tmpdir(), `${prefix}-rabbitmq-`));
  writeFileSync(join(root, OWNER_FILE), String(process.pid));
  const home = join(root, 'home');
  mkdirSync(home);
  const cookie = join(home, '.erlang.cookie');
  writeFileSync(cookie, `PAYOUTSTEST${Math.random().toString(36).slice(2).toUpperCase()}`);
  chmodSync(cookie, 0o400);
  writeFileSync(join(root, 'rabbitmq-env.conf'), '# this cluster reads nothing of /etc/rabbitmq\n');
  writeFileSync(join(root, 'enabled_plugins'), '[].\n');

  const taken = new Set<number>();
  const below = ephemeralLow();
  const port = () => freeRange(1, taken, below);
  const epmdPort = await port();
  const ctlPortMin = await freeRange(CTL_PORTS, taken, below);
  const nodes: ClusterNode[] = [];
  for (const label of ['a', 'b', 'c']) {
    const dir = join(root, label);
    nodes.push({
      name: `${prefix}-${label}@localhost`,
      label,
      amqpPort: await port(),
      distPort: await port(),
      dir,
      pidFile: join(dir, 'rabbitmq.pid'),
      server: undefined,
    });
  }
  nodes.forEach(writeNodeFiles);
  const epmd = spawn(EPMD, ['-port', String(epmdPort), '-address', '127.0.0.1'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', [MARK]: root },
    detached: true,
    stdio: 'ignore',
  });
  const cluster: Cluster = { root, home, epmdPort, ctlPortMin, nodes, epmd };
  clusters.add(cluster);
  try {
    await waitForPort(epmdPort, 10_000);
    for (const node of nodes) spawnServer(cluster, node);
    await Promise.all(nodes.map((node) => awaitNode(cluster, node)));
    const [first, ...others] = nodes as [ClusterNode, ...ClusterNode[]];
    for (const node of others) {
      await cli(cluster, node, 'rabbitmqctl', ['stop_app']);
      await cli(cluster, node, 'rabbitmqctl', ['join_cluster', first.name]);
      await cli(cluster, node, 'rabbitmqctl', ['start_app']);
    }
    await awaitAllRunning(cluster, first);
    return cluster;
  } catch (error) {
    killEverything(cluster);
    throw error;
  }
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (!(await portFree(port))) return;
    await sleep(50);
  }
  throw new ClusterError(`nothing listens on port ${port} after ${timeoutMs} ms`);
}
