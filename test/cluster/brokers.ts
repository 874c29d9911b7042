/**
 * `make test-cluster-brokers`: the pipeline on a three-node RabbitMQ cluster survives losing nodes.
 *
 * A cluster of its own (test/cluster/rabbitmq.ts: free ports, own directories and epmd; the default node on 5672
 * is never touched), a database of its own (payouts_cluster_brokers, dropped at the end) and an AMQP namespace of
 * its own. `migrate` declares the quorum queues on the cluster (no `x-quorum-initial-group-size`: a replica on each
 * of the three nodes); the API, a relay and two workers run from dist/ with AMQP_HOSTS naming all three nodes. The
 * workers are kept slower than the API (CLUSTER_WORKER_CONCURRENCY 2, CLUSTER_PROVIDER_DELAY_MS 20), so messages
 * wait in the queue when its leader goes. Then:
 *
 * 1. CLUSTER_PAYOUTS (2,000) payouts are created through the HTTP API, each with its own Idempotency-Key, at most 16
 *    in flight: CLUSTER_BURST (1,000) at once, the rest at CLUSTER_CREATE_RATE (12) per second, so creates go on
 *    through every step below.
 * 2. When a third of them are final, the node leading `payouts.process` gets SIGKILL. Recovery time: from the kill
 *    until a payout that no worker held at the kill is final (the one after the 2 × prefetch the workers may hold:
 *    it was delivered after the kill, by the queue's new leader); also printed, the longest stall of the final
 *    count after the kill.
 * 3. The killed node is started again; then all three nodes are restarted one by one (graceful stop and start),
 *    each waited for until it runs and no quorum queue depends on the next one alone.
 * 4. Once every create is answered, every payout must be final within CLUSTER_FINISH_TIMEOUT_SECONDS (180).
 *
 * Pass: every create answered 201; the audit of test/cluster/common.ts holds, its queues asked of this cluster (every
 * id answered 201 in the database and no other payout, all final, none paid twice, each completed one paid, no
 * unsent outbox row, both dead-letter queues empty); every payout completed (PROVIDER_FAULT_RATE is 0), so exactly
 * one provider transfer per payout; no role died. Prints the messages still ready in the work queue.
 * Needs `npm run build` (the make target builds first). Exits 1 on FAIL.
 */
import { existsSync } from 'node:fs';
import { Connection } from 'rabbitmq-client';
import type { Child } from '../../bench/lib.js';
import { CREATE_BODY, HarnessError, MAIN, RUN_ARGS } from '../../bench/lib.js';
import * as harness from '../../bench/lib.js';
import type { Audit, BrokerTarget, Counts } from './common.js';
import {
  audit,
  auditFailures,
  createDatabase,
  dropDatabase,
  printAudit,
  printVerdict,
  statusCounts,
} from './common.js';
import type { Cluster, ClusterNode } from './rabbitmq.js';
import * as rabbit from './rabbitmq.js';

const PAYOUTS = harness.envInt('CLUSTER_PAYOUTS', 2_000);
/** Creates sent at once when the run starts (at most CREATE_CONCURRENCY in flight): the backlog of the kill. */
const BURST = harness.envInt('CLUSTER_BURST', 1_000, 0);
/** Creates per second after the burst, until PAYOUTS: they go on through the kill and the restarts. */
const CREATE_RATE = harness.envInt('CLUSTER_CREATE_RATE', 12);
const CREATE_CONCURRENCY = 16;
/** The drain is kept slower than the burst (each worker WORKER_CONCURRENCY × PROVIDER_DELAY_MS): a backlog forms. */
const PROVIDER_DELAY_MS = harness.envInt('CLUSTER_PROVIDER_DELAY_MS', 20);
const WORKER_CONCURRENCY = harness.envInt('CLUSTER_WORKER_CONCURRENCY', 2);
const WORKERS = 2;
/**
 * The most payouts that can become final after the kill without a delivery after it: each worker holds at most
 * its prefetch (2 × WORKER_CONCURRENCY, src/consumers/payout-consumer.ts), started or not.
 */
const HELD_BY_WORKERS = WORKERS * 2 * WORKER_CONCURRENCY;
const FINISH_TIMEOUT_S = harness.envInt('CLUSTER_FINISH_TIMEOUT_SECONDS', 180);
/** Longest wait for the pipeline to work again after the leader's kill before the run fails. */
const RECOVERY_TIMEOUT_S = 120;
const DATABASE = 'payouts_cluster_brokers';
const NAMESPACE = `.cluster-${process.pid}`;
const FINAL = ['completed', 'failed', 'cancelled'];

const t0 = performance.now();
const elapsed = () => `${harness.fmt((performance.now() - t0) / 1000)} s`;
const say = (line: string) => process.stdout.write(`[${elapsed().padStart(8)}] ${line}\n`);

// ---------------------------------------------------------------------------------------------- payouts

const finalOf = (counts: Counts) => FINAL.reduce((sum, status) => sum + (counts[status] ?? 0), 0);

/** Payouts a worker has started and not finished. */
async function processingCount(url: string): Promise<number> {
  return harness.count(url, "SELECT count(*) AS n FROM payouts WHERE status = 'processing'");
}

/**
 * When the `nth` payout (from 1) to become final after `since` (epoch ms) did, in epoch ms; undefined while fewer
 * have.
 */
async function nthFinalAfter(url: string, since: number, nth: number): Promise<number | undefined> {
  return harness.withPg(url, async (client) => {
    const { rows } = await client.query<{ at: string }>(
      `SELECT extract(epoch FROM status_changed_at) * 1000 AS at FROM payouts
        WHERE status_changed_at > to_timestamp($1 / 1000.0) AND status = ANY($2)
        ORDER BY status_changed_at OFFSET $3 LIMIT 1`,
      [since, FINAL, nth - 1],
    );
    return rows[0] ? Number(rows[0].at) : undefined;
  });
}

// ---------------------------------------------------------------------------------------------- creates

/**
 * Creates through the API: BURST at once, then CREATE_RATE per second, at most CREATE_CONCURRENCY in flight, each
 * with its own key.
 */
class Creator {
  readonly created = new Set<string>();
  readonly refused: string[] = [];
  sent = 0;
  answered = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;

  constructor(
    private readonly port: number,
    private readonly apiKey: string,
  ) {}

  start(): void {
    const started = performance.now();
    const tick = () => {
      const due = Math.min(PAYOUTS, BURST + Math.floor(((performance.now() - started) / 1000) * CREATE_RATE));
      while (this.sent < due && this.inFlight < CREATE_CONCURRENCY) void this.createOne();
      if (this.sent < PAYOUTS) this.timer = setTimeout(tick, 10);
    };
    tick();
  }

  get done(): boolean {
    return this.answered === PAYOUTS;
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private async createOne(): Promise<void> {
    this.sent += 1;
    this.inFlight += 1;
    const key = `cluster-${process.pid}-${this.sent}`;
    try {
      const response = await fetch(`http://127.0.0.1:${this.port}/api/payouts`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${this.apiKey}`,
          'idempotency-key': key,
        },
        body: CREATE_BODY,
        signal: AbortSignal.timeout(30_000),
      });
      const text = await response.text();
      if (response.status === 201) this.created.add((JSON.parse(text) as { id: string }).id);
      else this.refused.push(`${key}: ${response.status} ${text.slice(0, 200)}`);
    } catch (error) {
      this.refused.push(`${key}: ${String(error)}`);
    } finally {
      this.inFlight -= 1;
      this.answered += 1;
    }
  }
}

// ---------------------------------------------------------------------------------------------- progress

interface Sample {
  at: number;
  final: number;
}

/** Polls the final count every 200 ms, and checks that no role has died. */
class Progress {
  readonly samples: Sample[] = [];
  final = 0;
  private running = true;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly url: string,
    private readonly roles: Child[],
  ) {}

  start(): void {
    this.loop = (async () => {
      while (this.running) {
        try {
          this.final = finalOf(await statusCounts(this.url));
          this.samples.push({ at: Date.now(), final: this.final });
        } catch (error) {
          say(`could not read the status counts: ${String(error)}`);
        }
        await harness.sleep(200);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  checkRoles(): void {
    for (const role of this.roles) {
      if (role.proc.exitCode !== null || role.proc.signalCode !== null)
        throw new HarnessError(
          `${role.name} exited (${role.proc.exitCode ?? role.proc.signalCode}):\n${role.output()}`,
        );
    }
  }

  async until(what: string, done: () => boolean | Promise<boolean>, timeoutS: number): Promise<void> {
    const until = Date.now() + timeoutS * 1000;
    while (!(await done())) {
      this.checkRoles();
      if (Date.now() > until) throw new HarnessError(`${what}: not within ${timeoutS} s`);
      await harness.sleep(100);
    }
  }

  /** The longest time after `since` during which the final count did not rise, in ms, up to `until`. */
  longestStall(since: number, until: number): number {
    let last = since;
    let longest = 0;
    let count = this.samples.filter((s) => s.at <= since).pop()?.final ?? 0;
    for (const sample of this.samples.filter((s) => s.at > since && s.at <= until)) {
      if (sample.final > count) {
        longest = Math.max(longest, sample.at - last);
        last = sample.at;
        count = sample.final;
      }
    }
    return Math.max(longest, until - last);
  }
}

// ---------------------------------------------------------------------------------------------- steps

function clusterEnv(cluster: Cluster): Record<string, string> {
  return {
    AMQP_URL: rabbit.amqpUrl(cluster),
    AMQP_HOSTS: rabbit.amqpHosts(cluster),
    AMQP_NAMESPACE: NAMESPACE,
    AMQP_QUEUE_EXPIRES_MS: '0',
  };
}

async function startPipeline(
  cluster: Cluster,
  url: string,
): Promise<{ api: Child; apiPort: number; roles: Child[] }> {
  const env = {
    ...clusterEnv(cluster),
    PROVIDER_DELAY_MS: String(PROVIDER_DELAY_MS),
    WORKER_CONCURRENCY: String(WORKER_CONCURRENCY),
  };
  const apiPort = await harness.freePort();
  const api = harness.start(
    'api',
    'node',
    RUN_ARGS,
    {
      ...harness.runEnv(apiPort, url),
      ...clusterEnv(cluster),
      ...rabbit.markEnv(cluster),
      LOG_LEVEL: 'warn',
    },
    { stdoutFile: harness.apiLogFile(), onlyEnv: true },
  );
  await harness.waitForHttp(api, apiPort);
  const roles = [api];
  roles.push(await harness.startPipelineRole('relay', 'relay', url, { env }));
  for (const name of ['worker 1', 'worker 2'])
    roles.push(await harness.startPipelineRole(name, 'worker', url, { env }));
  return { api, apiPort, roles };
}

interface Recovery {
  leader: ClusterNode;
  newLeader: ClusterNode | undefined;
  finalAtKill: number;
  createdAtKill: number;
  queuedAtKill: number;
  processingAtKill: number;
  recoveryMs: number;
  stallMs: number;
}

/**
 * SIGKILL to `leader`, the leader of the work queue. Recovery time: from the kill until the payout that became
 * final after HELD_BY_WORKERS others did (what the workers held at the kill may finish without the broker: this one
 * was delivered after the kill, by the queue's new leader, through a worker's connection that still or again works).
 */
async function killLeader(
  cluster: Cluster,
  leader: ClusterNode,
  url: string,
  broker: Broker,
  creator: Creator,
  progress: Progress,
): Promise<Recovery> {
  const queuedAtKill = await broker.depth(`payouts.process${NAMESPACE}`);
  const processingAtKill = await processingCount(url);
  const [finalAtKill, createdAtKill] = [progress.final, creator.created.size];
  const killedAt = Date.now();
  await rabbit.killNode(leader);
  say(
    `SIGKILL to ${leader.name}, leader of payouts.process${NAMESPACE}: ${createdAtKill} created, ${finalAtKill} ` +
      `final, ${queuedAtKill} messages ready in the queue, ${processingAtKill} payouts being processed`,
  );
  let recoveredAt: number | undefined;
  await progress.until(
    `${HELD_BY_WORKERS + 1} payouts final after the kill`,
    async () => (recoveredAt = await nthFinalAfter(url, killedAt, HELD_BY_WORKERS + 1)) !== undefined,
    RECOVERY_TIMEOUT_S,
  );
  const recoveryMs = recoveredAt! - killedAt;
  await harness.sleep(2000);
  const stallMs = progress.longestStall(killedAt, Date.now());
  const newLeader = await rabbit
    .queueInfo(cluster, `payouts.process${NAMESPACE}`)
    .then((info) => info.leader)
    .catch(() => undefined);
  say(
    `recovery time ${harness.fmt(recoveryMs / 1000, 2)} s; longest stall of the final count ` +
      `${harness.fmt(stallMs / 1000, 2)} s; new leader ${newLeader?.name ?? '?'}`,
  );
  return {
    leader,
    newLeader,
    finalAtKill,
    createdAtKill,
    queuedAtKill,
    processingAtKill,
    recoveryMs,
    stallMs,
  };
}

interface Restart {
  node: string;
  seconds: number;
  createdDuring: number;
  finalDuring: number;
}

/** Graceful stop and start of one node, after waiting until no quorum queue depends on it alone. */
async function restartNode(
  cluster: Cluster,
  node: ClusterNode,
  creator: Creator,
  progress: Progress,
): Promise<Restart> {
  await rabbit.awaitNotQuorumCritical(cluster, node);
  const started = Date.now();
  const [sent, final] = [creator.sent, progress.final];
  await rabbit.stopNode(cluster, node);
  say(`${node.name} stopped (graceful)`);
  await rabbit.startNode(cluster, node);
  await rabbit.awaitAllRunning(cluster, node);
  const restart = {
    node: node.name,
    seconds: (Date.now() - started) / 1000,
    createdDuring: creator.sent - sent,
    finalDuring: progress.final - final,
  };
  say(
    `${node.name} back in the cluster after ${harness.fmt(restart.seconds)} s ` +
      `(${restart.createdDuring} creates sent, ${restart.finalDuring} payouts final meanwhile)`,
  );
  progress.checkRoles();
  return restart;
}

/** The cluster as the audit asks it: every node, in AMQP_HOSTS order, under this run's namespace. */
function clusterBroker(cluster: Cluster): BrokerTarget {
  return { url: rabbit.amqpUrl(cluster), hosts: rabbit.amqpHosts(cluster).split(','), namespace: NAMESPACE };
}

/** A connection of the test's own to the cluster (every node in AMQP_HOSTS order), for queue depths. */
class Broker {
  private readonly connection: Connection;

  constructor(target: BrokerTarget) {
    this.connection = new Connection({ url: target.url, hosts: target.hosts, retryLow: 100, retryHigh: 500 });
    this.connection.on('error', () => undefined);
  }

  /** Messages ready in `queue` (a passive declare: never creates or changes it). */
  async depth(queue: string): Promise<number> {
    const channel = await this.connection.acquire();
    try {
      return (await channel.queueDeclare({ queue, passive: true })).messageCount;
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}

// ---------------------------------------------------------------------------------------------- main

async function scenario(cluster: Cluster): Promise<void> {
  const url = await createDatabase(DATABASE);
  await harness.run('node', [MAIN, 'migrate'], {
    DATABASE_URL: url,
    LOG_LEVEL: 'warn',
    ...clusterEnv(cluster),
  });
  const apiKey = await harness.issueKey(url, 'cluster');
  const { apiPort, roles } = await startPipeline(cluster, url);
  say(`API, relay and two workers run (AMQP_HOSTS=${rabbit.amqpHosts(cluster)}, namespace ${NAMESPACE})`);

  // Looked up before the load: at the threshold the kill follows at once (a CLI call takes seconds).
  const { leader } = await rabbit.queueInfo(cluster, `payouts.process${NAMESPACE}`);
  say(`${leader.name} leads payouts.process${NAMESPACE}`);

  const broker = new Broker(clusterBroker(cluster));
  const creator = new Creator(apiPort, apiKey);
  const progress = new Progress(url, roles);
  progress.start();
  creator.start();
  try {
    await progress.until('a third of the payouts final', () => progress.final >= PAYOUTS / 3, 300);
    const recovery = await killLeader(cluster, leader, url, broker, creator, progress);
    await rabbit.startNode(cluster, recovery.leader);
    await rabbit.awaitAllRunning(cluster, recovery.leader);
    say(`${recovery.leader.name} started again and rejoined`);

    const restarts: Restart[] = [];
    for (const node of cluster.nodes) restarts.push(await restartNode(cluster, node, creator, progress));
    const createsLeft = PAYOUTS - creator.sent;
    say(`rolling restart done; ${createsLeft} creates still to send`);

    await progress.until('every create answered', () => creator.done, 300);
    const finishStart = Date.now();
    await progress
      .until(
        'every payout final',
        async () => finalOf(await statusCounts(url)) >= creator.created.size,
        FINISH_TIMEOUT_S,
      )
      .catch((error: unknown) => harness.loud(String(error)));
    say(`drained ${harness.fmt((Date.now() - finishStart) / 1000)} s after the last create`);

    const result = await audit(url, creator.created, clusterBroker(cluster));
    report(creator, recovery, restarts, result);
  } finally {
    creator.stop();
    await progress.stop();
    await broker.close().catch(() => undefined);
    await harness.stopAll();
  }
}

function report(creator: Creator, recovery: Recovery, restarts: Restart[], result: Audit): void {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out('\nmake test-cluster-brokers:');
  out(
    `  leader kill: ${recovery.leader.name} at ${recovery.createdAtKill} created, ${recovery.finalAtKill} final, ` +
      `${recovery.queuedAtKill} ready in the queue, ${recovery.processingAtKill} processing`,
  );
  out(
    `  recovery time: ${harness.fmt(recovery.recoveryMs / 1000, 2)} s (kill → the first payout final that no worker ` +
      `held at the kill); longest stall of the final count ${harness.fmt(recovery.stallMs / 1000, 2)} s; new leader ` +
      `${recovery.newLeader?.name ?? '?'}`,
  );
  for (const restart of restarts)
    out(
      `  restart ${restart.node}: ${harness.fmt(restart.seconds)} s, ${restart.createdDuring} creates sent and ` +
        `${restart.finalDuring} payouts final meanwhile`,
    );
  printAudit(result);

  const failures: string[] = [];
  if (creator.refused.length > 0)
    failures.push(
      `${creator.refused.length} of ${PAYOUTS} creates not answered 201:\n${creator.refused
        .slice(0, 10)
        .map((refused) => `      ${refused}`)
        .join('\n')}`,
    );
  failures.push(...auditFailures(result));
  // All completed (PROVIDER_FAULT_RATE is 0): with the audit's, exactly one provider transfer per payout.
  if ((result.counts.completed ?? 0) !== creator.created.size)
    failures.push(
      `${creator.created.size} payouts answered 201 but ${result.counts.completed ?? 0} completed`,
    );
  failures.push(...harness.problems);
  printVerdict(failures);
}

async function main(): Promise<void> {
  if (!existsSync(MAIN)) throw new HarnessError(`${MAIN} is missing: run \`npm run build\` first`);
  say(`starting a 3-node RabbitMQ cluster of our own…`);
  const cluster = await rabbit.startCluster();
  // Every child of this run (`migrate`, `key`, the roles) inherits the cluster: none falls back to the default node,
  // and each is swept with the cluster should this process be killed before it stops them.
  rabbit.markChildren(cluster);
  process.env.AMQP_URL = rabbit.amqpUrl(cluster);
  process.env.AMQP_HOSTS = rabbit.amqpHosts(cluster);
  try {
    say(
      `cluster up: ${cluster.nodes.map((node) => `${node.name} amqp ${node.amqpPort}`).join(', ')} ` +
        `(epmd ${cluster.epmdPort}, ${cluster.root})`,
    );
    say(
      `${PAYOUTS} payouts: ${BURST} at once, then ${CREATE_RATE}/s; 2 workers × concurrency ${WORKER_CONCURRENCY}, ` +
        `provider delay ${PROVIDER_DELAY_MS} ms`,
    );
    await scenario(cluster);
  } finally {
    await harness.stopAll();
    await rabbit.destroyCluster(cluster);
    await dropDatabase(DATABASE).catch((error: unknown) =>
      harness.loud(`could not drop ${DATABASE}: ${String(error)}`),
    );
    say('cluster, processes and database removed');
  }
}

await harness.runMain('test-cluster-brokers', main);
