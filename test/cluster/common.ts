/**
 * What the cluster scenarios share on top of bench/lib.ts: a database of a scenario's own on the default PostgreSQL,
 * the service's roles with their ops port known (to poll /readyz), one create over HTTP reduced to what the audits
 * need, waiting until every payout is final, and the audit itself (nothing lost, nothing paid twice, nothing left in
 * the outbox or the dead-letter queues), asked of the default broker or of a scenario's own cluster, with its
 * failures as sentences.
 */
import { spawnSync } from 'node:child_process';
import { Connection } from 'rabbitmq-client';
import type * as ConfigModule from '../../src/config.js';
import type * as AmqpModule from '../../src/messaging/amqp.js';
import type * as TopologyModule from '../../src/messaging/topology.js';
import type { Child } from '../../bench/lib.js';
import {
  BENCH_AMQP_ENV,
  BENCH_NAMESPACE,
  CREATE_BODY,
  HarnessError,
  MAIN,
  dbUrl,
  freePort,
  fromDist,
  pipelineEnv,
  sleep,
  start,
  waitForHttp,
  withPg,
} from '../../bench/lib.js';

// ---------------------------------------------------------------------------------------------- database

/** The databases this process created and has not dropped yet. */
const ownDatabases = new Set<string>();
const dropSql = (name: string) => `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`;

/** Creates `name` afresh on the default PostgreSQL (dropping what an earlier run left); its URL. */
export async function createDatabase(name: string): Promise<string> {
  if (!/^payouts_[a-z0-9_]+$/.test(name)) throw new HarnessError(`refusing to create ${name}`);
  ownDatabases.add(name);
  await withPg(dbUrl('postgres'), async (client) => {
    await client.query(dropSql(name));
    await client.query(`CREATE DATABASE ${name}`);
  });
  return dbUrl(name);
}

export async function dropDatabase(name: string): Promise<void> {
  await withPg(dbUrl('postgres'), (client) => client.query(dropSql(name)));
  ownDatabases.delete(name);
}

// Interrupted (SIGINT, SIGTERM: the harness exits at once), the run still drops its databases, synchronously.
process.on('exit', () => {
  for (const name of ownDatabases)
    spawnSync('psql', [dbUrl('postgres'), '-qc', dropSql(name)], { stdio: 'ignore' });
});

// ---------------------------------------------------------------------------------------------- roles

export type RoleName = 'api' | 'relay' | 'worker' | 'sweeper';

export interface Role {
  name: string;
  role: RoleName;
  child: Child;
  /** Its /metrics, /healthz, /readyz port. */
  opsPort: number;
  /** The API's public port (api only). */
  port?: number;
  /** The process id it started with: the same at the end means it was never restarted. */
  pid: number;
}

/** Starts `node dist/src/main.js <role>` on `databaseUrl`, the bench's AMQP namespace, and waits for its /readyz. */
export async function startRole(
  name: string,
  role: RoleName,
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<Role> {
  const opsPort = await freePort();
  const port = role === 'api' ? await freePort() : undefined;
  const child = start(
    name,
    'node',
    [MAIN, role],
    pipelineEnv(databaseUrl, {
      LOG_LEVEL: 'warn',
      METRICS_PORT: String(opsPort),
      ...(port === undefined ? {} : { PORT: String(port), HOST: '127.0.0.1' }),
      ...env,
    }),
  );
  await waitForHttp(child, opsPort, '/readyz', 60_000, true);
  return { name, role, child, opsPort, port, pid: child.proc.pid ?? -1 };
}

/** 200 from the role's /readyz within a second. */
export async function isReady(role: Role): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${role.opsPort}/readyz`, {
      signal: AbortSignal.timeout(1000),
    });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

/** Still the process it started as (not exited, not replaced). */
export function stillRunning(role: Role): boolean {
  return (
    role.child.proc.exitCode === null &&
    role.child.proc.signalCode === null &&
    role.child.proc.pid === role.pid
  );
}

export interface Answer {
  key: string;
  /** HTTP status, or 0 when no answer came (connection refused or reset, timeout). */
  status: number;
  /** The payout's id in a 201's body. */
  id?: string;
  replayed: boolean;
  /** Date.now() when the answer (or the error) arrived. */
  at: number;
  retryAfterS?: number;
}

/** One `POST /api/payouts` with `Idempotency-Key: key`. */
export async function createPayout(
  port: number,
  apiKey: string,
  key: string,
  body = CREATE_BODY,
): Promise<Answer> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/api/payouts`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${apiKey}`,
        'content-type': 'application/json',
        'idempotency-key': key,
      },
      body,
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    const retryAfter = response.headers.get('retry-after');
    return {
      key,
      status: response.status,
      id: response.status === 201 ? (JSON.parse(text) as { id: string }).id : undefined,
      replayed: response.headers.get('idempotent-replayed') === 'true',
      at: Date.now(),
      ...(retryAfter === null ? {} : { retryAfterS: Number(retryAfter) }),
    };
  } catch {
    return { key, status: 0, replayed: false, at: Date.now() };
  }
}

/**
 * Sends the create again with the same key until it is answered 201 (a client's retry): after a 409 (the first is
 * still in flight) or a 5xx or no answer, waits and tries again, up to `timeoutMs`.
 */
export async function createUntilCreated(
  port: number,
  apiKey: string,
  key: string,
  timeoutMs = 30_000,
): Promise<Answer> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const answer = await createPayout(port, apiKey, key);
    if (answer.status === 201 || (answer.status >= 400 && answer.status < 500 && answer.status !== 409))
      return answer;
    if (Date.now() > until) return answer;
    await sleep(answer.status === 409 ? Math.min(1000, (answer.retryAfterS ?? 0.2) * 1000) : 250);
  }
}

// ---------------------------------------------------------------------------------------------- audits

export type Counts = Record<string, number>;

export async function statusCounts(url: string): Promise<Counts> {
  return withPg(url, async (client) => {
    const { rows } = await client.query<{ status: string; n: string }>(
      'SELECT status, count(*) AS n FROM payouts GROUP BY status',
    );
    return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
  });
}

export const unfinishedOf = (counts: Counts) => (counts.created ?? 0) + (counts.processing ?? 0);

/** Polls until no payout is `created` or `processing`, or `timeoutMs` has passed; the last counts. */
export async function waitAllFinal(url: string, timeoutMs: number): Promise<{ counts: Counts; ms: number }> {
  const t0 = Date.now();
  let counts = await statusCounts(url);
  let lastPrint = t0;
  while (unfinishedOf(counts) > 0 && Date.now() - t0 < timeoutMs) {
    await sleep(250);
    counts = await statusCounts(url);
    if (Date.now() - lastPrint > 5000) {
      lastPrint = Date.now();
      process.stdout.write(`  waiting for final: ${JSON.stringify(counts)}\n`);
    }
  }
  return { counts, ms: Date.now() - t0 };
}

/** Polls until every outbox row is sent, or `timeoutMs` has passed; the rows still unsent. */
export async function waitOutboxSent(url: string, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  const unsent = () =>
    withPg(url, async (client) => {
      const { rows } = await client.query<{ n: string }>(
        'SELECT count(*) AS n FROM outbox WHERE published_at IS NULL',
      );
      return Number(rows[0]?.n ?? 0);
    });
  let left = await unsent();
  while (left > 0 && Date.now() < until) {
    await sleep(250);
    left = await unsent();
  }
  return left;
}

/** Where the audit asks the broker: its endpoints (AMQP_URL, and AMQP_HOSTS for a cluster) and the AMQP namespace. */
export interface BrokerTarget {
  url: string;
  /** `host:port` of every node of a cluster, tried in turn; absent: the host of `url` alone. */
  hosts?: string[];
  namespace: string;
}

/** The broker the service's environment names (AMQP_URL, AMQP_HOSTS), under the bench's namespace. */
export async function benchBroker(): Promise<BrokerTarget> {
  const { loadConfig } = await fromDist<typeof ConfigModule>('src/config.ts');
  const { brokerEndpoints } = await fromDist<typeof AmqpModule>('src/messaging/amqp.ts');
  return {
    ...brokerEndpoints(loadConfig({ ...process.env, ...BENCH_AMQP_ENV })),
    namespace: BENCH_NAMESPACE,
  };
}

export interface Audit {
  payouts: number;
  counts: Counts;
  /** Ids answered 201 that the database does not have. */
  missing: string[];
  /** Payouts in the database that no 201 answered (a create that was never acknowledged, or one too many). */
  unanswered: number;
  /** Payouts with more than one provider transfer (of any result). */
  paidTwice: number;
  /**
   * Completed payouts without a succeeded provider transfer. With `paidTwice` 0: every completed payout has exactly
   * one provider transfer, and it succeeded.
   */
  completedUnpaid: number;
  /** Provider transfers of payouts that are not completed (a cancelled or failed payout that was paid). */
  paidNotCompleted: number;
  unsentOutbox: number;
  /** Messages in the namespace's dead-letter queues (payouts and webhooks). */
  dlq: number;
  /** Messages ready in the namespace's work queue (printed, not a failure: a duplicate may still be on its way). */
  workQueue: number;
}

/**
 * The database's and the broker's account of the run, against the ids the clients were answered 201. The broker
 * asked is `broker` (a scenario's own cluster), else the one the environment names under the bench's namespace.
 */
export async function audit(url: string, answeredIds: Set<string>, broker?: BrokerTarget): Promise<Audit> {
  const ids = [...answeredIds];
  const db = await withPg(url, async (client) => {
    const one = async (sql: string, params: unknown[] = []) =>
      Number((await client.query<{ n: string }>(sql, params)).rows[0]?.n ?? 0);
    const found = await client.query<{ id: string }>('SELECT id FROM payouts WHERE id = ANY($1::uuid[])', [
      ids,
    ]);
    const present = new Set(found.rows.map((row) => row.id));
    return {
      payouts: await one('SELECT count(*) AS n FROM payouts'),
      missing: ids.filter((id) => !present.has(id)),
      unanswered: await one('SELECT count(*) AS n FROM payouts WHERE NOT (id = ANY($1::uuid[]))', [ids]),
      paidTwice: await one(
        'SELECT count(*) AS n FROM (SELECT payout_id FROM provider_transfers GROUP BY payout_id HAVING count(*) > 1) t',
      ),
      completedUnpaid: await one(
        `SELECT count(*) AS n FROM payouts p WHERE status = 'completed'
            AND NOT EXISTS (SELECT 1 FROM provider_transfers t WHERE t.payout_id = p.id AND t.result = 'succeeded')`,
      ),
      paidNotCompleted: await one(
        `SELECT count(*) AS n FROM provider_transfers t JOIN payouts p ON p.id = t.payout_id
          WHERE t.result = 'succeeded' AND p.status <> 'completed'`,
      ),
      unsentOutbox: await one('SELECT count(*) AS n FROM outbox WHERE published_at IS NULL'),
    };
  });
  const depths = await queueDepths(broker ?? (await benchBroker()));
  return { ...db, counts: await statusCounts(url), ...depths };
}

/** Messages in the namespace's dead-letter queues (payouts and webhooks) and ready in its work queue. */
export async function queueDepths(broker: BrokerTarget): Promise<{ dlq: number; workQueue: number }> {
  const { topologyNames } = await fromDist<typeof TopologyModule>('src/messaging/topology.ts');
  const names = topologyNames(broker.namespace);
  const connection = new Connection({ url: broker.url, hosts: broker.hosts, retryLow: 100, retryHigh: 200 });
  // A node of a cluster that refuses the connection is no error here: the next one in `hosts` is tried.
  connection.on('error', () => undefined);
  try {
    const channel = await connection.acquire();
    try {
      const depth = async (queue: string) =>
        (await channel.queueDeclare({ queue, passive: true })).messageCount;
      return {
        dlq: (await depth(names.deadLetterQueue)) + (await depth(names.webhookDeadLetterQueue)),
        workQueue: await depth(names.workQueue),
      };
    } finally {
      await channel.close();
    }
  } finally {
    await connection.close();
  }
}

/** The audit's failures, as sentences; none when it passed. */
export function auditFailures(result: Audit): string[] {
  const failures: string[] = [];
  if (result.missing.length > 0)
    failures.push(
      `${result.missing.length} payouts answered 201 are missing, e.g. ${result.missing.slice(0, 3).join(', ')}`,
    );
  if (result.unanswered > 0) failures.push(`${result.unanswered} payouts exist that no 201 answered`);
  if (result.paidTwice > 0) failures.push(`${result.paidTwice} payouts were paid more than once`);
  if (result.completedUnpaid > 0)
    failures.push(`${result.completedUnpaid} completed payouts have no provider transfer`);
  if (result.paidNotCompleted > 0) failures.push(`${result.paidNotCompleted} paid payouts are not completed`);
  if (unfinishedOf(result.counts) > 0) failures.push(`payouts not final: ${JSON.stringify(result.counts)}`);
  if (result.unsentOutbox > 0) failures.push(`${result.unsentOutbox} outbox rows were never sent`);
  if (result.dlq > 0) failures.push(`${result.dlq} messages in the dead-letter queues`);
  return failures;
}

export function printAudit(result: Audit): void {
  process.stdout.write(
    `audit: ${result.payouts} payouts ${JSON.stringify(result.counts)}; answered 201 but missing ${result.missing.length}; ` +
      `never answered 201 ${result.unanswered}; paid twice ${result.paidTwice}; completed unpaid ${result.completedUnpaid}; ` +
      `paid not completed ${result.paidNotCompleted}; unsent outbox ${result.unsentOutbox}; dead letters ${result.dlq}; ` +
      `ready in the work queue ${result.workQueue}\n`,
  );
}

/** Prints PASS, or FAIL and every failure, and sets the exit status to 1 on FAIL. */
export function printVerdict(failures: string[]): void {
  process.stdout.write(
    failures.length === 0 ? '\nPASS\n' : `\nFAIL:\n${failures.map((f) => `  - ${f}`).join('\n')}\n`,
  );
  if (failures.length > 0) process.exitCode = 1;
}

export const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
