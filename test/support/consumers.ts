/**
 * Helpers of the consumer tests: a configuration on the run's database with a namespace of queues of its own
 * (with `x-expires`, so a crashed run leaves nothing behind), contexts with small pools, the harness that sets up
 * and tears down a test file's namespace and the roles its tests start, bulk creation through the service, and
 * the counts the tests assert on.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { Connection } from 'rabbitmq-client';
import type { Config } from '../../src/config.js';
import { loadConfig } from '../../src/config.js';
import { startRelay } from '../../src/relay/outbox-relay.js';
import { startWorker } from '../../src/consumers/payout-consumer.js';
import type { RoleHandle } from '../../src/ops-server.js';
import { topologyOptions } from '../../src/messaging/amqp.js';
import { startSweeper } from '../../src/sweeper/sweeper.js';
import { startWebhooks } from '../../src/consumers/webhook-consumer.js';
import { webhookDispatcher } from '../../src/roles/parts.js';
import type { TopologyNames } from '../../src/messaging/topology.js';
import { declareTopology, deleteTopology, queueDepth, topologyNames } from '../../src/messaging/topology.js';
import type { TestContext as AppContext } from './context.js';
import { createTestContext as createContext } from './context.js';
import type { CreatePayoutInput } from '../../src/domain/payout-service.js';
import type { Principal } from '../../src/domain/principal.js';
import type { PayoutStatus } from '../../src/machines/payout-lifecycle.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { testDatabaseUrl } from './database.js';
import { payoutInput, createWire } from './fixtures.js';
import { TcpProxy } from './tcp-proxy.js';
import { waitFor } from './wait.js';

export { waitFor };

export const AMQP_URL = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** Queues of a test run expire this long after their last use, if the run could not delete them. */
export const TEST_QUEUE_EXPIRES_MS = 15 * 60_000;

export function testNamespace(): string {
  return `.test-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Environment of a consumer role under test: fast retries, no provider delay, small pools, silent logs. */
export function consumerEnv(
  namespace: string,
  overrides: Record<string, string> = {},
): Record<string, string> {
  return {
    DATABASE_URL: testDatabaseUrl(),
    DATABASE_POOL_MAX: '6',
    AMQP_URL,
    AMQP_NAMESPACE: namespace,
    AMQP_QUEUE_EXPIRES_MS: String(TEST_QUEUE_EXPIRES_MS),
    METRICS_PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PROVIDER_DELAY_MS: '0',
    PROVIDER_FAULT_RATE: '0',
    RETRY_DELAYS_MS: '50,100,200',
    WORKER_CONCURRENCY: '8',
    RELAY_POLL_MS: '200',
    RELAY_LEASE_MS: '5000',
    SWEEP_INTERVAL_MS: '200',
    ...overrides,
  };
}

export function consumerConfig(namespace: string, overrides: Record<string, string> = {}): Config {
  return loadConfig(consumerEnv(namespace, overrides));
}

/** A context of its own (pool, registry, logger) for one role under test. */
export function testContext(config: Config): AppContext {
  return createContext(config, {
    metrics: createMetrics({ defaults: false }),
    log: createLogger({ level: config.logLevel, name: 'test' }),
  });
}

/** A broker connection of the test itself, for declaring, inspecting and deleting its namespace. */
export async function testBroker(): Promise<Connection> {
  const connection = new Connection({
    url: AMQP_URL,
    connectionName: 'payouts-test',
    retryLow: 100,
    retryHigh: 1000,
  });
  connection.on('error', () => undefined);
  await connection.onConnect(10_000);
  return connection;
}

export async function declareTestTopology(connection: Connection, config: Config): Promise<void> {
  await declareTopology(connection, topologyOptions(config));
}

export async function deleteTestTopology(connection: Connection, config: Config): Promise<void> {
  await deleteTopology(connection, topologyOptions(config)).catch(() => undefined);
}

/** A role started by the harness, with the context it runs on (for its metrics). */
export interface HarnessRole extends RoleHandle {
  readonly ctx: AppContext;
}

export interface ConsumerHarnessOptions {
  /** Settings of the file's configuration, on top of `consumerEnv`. */
  env?: Record<string, string>;
  /** Settings every role context starts from, before the role's own. */
  roleEnv?: Record<string, string>;
  /** Declare the namespace's topology before the tests (default true); false for a file that declares it itself. */
  declareTopology?: boolean;
}

/**
 * What the tests of one consumer file share, set up by `useConsumerHarness` before them and torn down after them.
 * The getters throw before the setup ran.
 */
export interface ConsumerHarness {
  /** The file's configuration, with a namespace of its own. */
  readonly config: Config;
  /** The test's own context: creating, reading and counting payouts. */
  readonly ctx: AppContext;
  /** The test's own broker connection: declaring, inspecting and deleting the namespace. */
  readonly broker: Connection;
  readonly names: TopologyNames;
  /** A context for one role, on the file's namespace; its pool is destroyed after the test. */
  roleContext(overrides?: Record<string, string>): AppContext;
  /** A role on a context of its own (`overrides` on top of the role settings), stopped after the test. */
  startRelay(overrides?: Record<string, string>): Promise<HarnessRole>;
  startWorker(overrides?: Record<string, string>): Promise<HarnessRole>;
  startSweeper(overrides?: Record<string, string>): Promise<HarnessRole>;
  startWebhooks(overrides?: Record<string, string>): Promise<HarnessRole>;
  /** A started TCP proxy in front of the broker or the database, stopped after the test (after its roles). */
  brokerProxy(): Promise<TcpProxy>;
  databaseProxy(): Promise<TcpProxy>;
  /** Asserts the namespace's dead-letter queue is empty. */
  expectNothingDeadLettered(): Promise<void>;
  /** Runs `cleanup` after the file's tests, before the harness deletes the namespace and closes its connections. */
  defer(cleanup: () => Promise<void>): void;
}

/**
 * Registers the hooks of a consumer test file in the calling `describe`: before its tests a configuration with a
 * namespace of its own, a context, a broker connection and (by default) the topology; after each test the roles
 * it started are stopped, their contexts destroyed and its proxies stopped, in that order; after the file the
 * deferred cleanups run, then the namespace is deleted and the connections closed. Hooks a file registers after
 * this call run after the harness's own.
 */
export function useConsumerHarness(options: ConsumerHarnessOptions = {}): ConsumerHarness {
  let setup: { config: Config; ctx: AppContext; broker: Connection } | undefined;
  const roles: RoleHandle[] = [];
  const contexts: AppContext[] = [];
  const proxies: TcpProxy[] = [];
  const deferred: Array<() => Promise<void>> = [];
  const ready = () => {
    if (!setup) throw new Error('the consumer harness is used before its setup ran');
    return setup;
  };

  const roleContext = (overrides: Record<string, string> = {}): AppContext => {
    const roleCtx = testContext(
      consumerConfig(ready().config.amqpNamespace, { ...options.roleEnv, ...overrides }),
    );
    contexts.push(roleCtx);
    return roleCtx;
  };
  const starter =
    (start: (ctx: AppContext) => Promise<RoleHandle>) =>
    async (overrides: Record<string, string> = {}): Promise<HarnessRole> => {
      const roleCtx = roleContext(overrides);
      const role = await start(roleCtx);
      roles.push(role);
      return Object.assign(role, { ctx: roleCtx });
    };
  const proxy = async (url: URL, defaultPort: number): Promise<TcpProxy> => {
    const created = new TcpProxy(url.hostname, Number(url.port || defaultPort));
    await created.start();
    proxies.push(created);
    return created;
  };

  before(async () => {
    const config = consumerConfig(testNamespace(), options.env);
    const ctx = testContext(config);
    const broker = await testBroker();
    setup = { config, ctx, broker };
    if (options.declareTopology !== false) await declareTestTopology(broker, config);
  });

  afterEach(async () => {
    await Promise.all(roles.splice(0).map((role) => role.stop()));
    await Promise.all(contexts.splice(0).map((roleCtx) => roleCtx.db.destroy()));
    await Promise.all(proxies.splice(0).map((created) => created.stop()));
  });

  after(async () => {
    if (!setup) return;
    for (const cleanup of deferred.splice(0)) await cleanup();
    await deleteTestTopology(setup.broker, setup.config);
    await setup.broker.close();
    await setup.ctx.db.destroy();
  });

  return {
    get config() {
      return ready().config;
    },
    get ctx() {
      return ready().ctx;
    },
    get broker() {
      return ready().broker;
    },
    get names() {
      return topologyNames(ready().config.amqpNamespace);
    },
    roleContext,
    startRelay: starter((ctx) => startRelay(ctx)),
    startWorker: starter((ctx) => startWorker(ctx)),
    startSweeper: starter((ctx) => startSweeper(ctx)),
    startWebhooks: starter((ctx) =>
      startWebhooks({
        ...ctx,
        dispatcher: webhookDispatcher(ctx.config, ctx.webhookStore),
        backlog: ctx.webhookStore,
      }),
    ),
    brokerProxy: () => proxy(new URL(ready().config.amqpUrl), 5672),
    databaseProxy: () => proxy(new URL(ready().config.databaseUrl), 5432),
    async expectNothingDeadLettered() {
      expect(
        await queueDepth(ready().broker, topologyNames(ready().config.amqpNamespace).deadLetterQueue),
      ).to.equal(0, 'nothing dead-lettered');
    },
    defer(cleanup) {
      deferred.push(cleanup);
    },
  };
}

/** Creates `count` payouts through the service, a few at a time; returns their ids in creation order. */
export async function createPayouts(
  ctx: AppContext,
  principal: Principal,
  count: number,
  input: (index: number) => CreatePayoutInput = () => payoutInput(),
  parallel = 4,
): Promise<string[]> {
  const ids: string[] = new Array<string>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        const index = next++;
        const created = await createWire(ctx.service, principal, input(index), {
          requestId: `test-${index}`,
        });
        ids[index] = created.body.id;
      }
    }),
  );
  return ids;
}

/** Rows of a SQL query (raw SQL keeps the test helpers' row types explicit). */
export async function query<T>(
  db: Knex,
  sql: string,
  bindings: readonly Knex.RawBinding[] = [],
): Promise<T[]> {
  const result = await db.raw<{ rows: T[] }>(sql, bindings);
  return result.rows;
}

export async function statusCounts(db: Knex, clientId: string): Promise<Record<string, number>> {
  const rows = await query<{ status: string; count: string }>(
    db,
    'SELECT status, count(*) AS count FROM payouts WHERE client_id = ? GROUP BY status',
    [clientId],
  );
  return Object.fromEntries(rows.map((row) => [row.status, Number(row.count)]));
}

export async function unfinishedCount(db: Knex, clientId: string): Promise<number> {
  const rows = await query<{ count: string }>(
    db,
    `SELECT count(*) AS count FROM payouts WHERE client_id = ? AND status IN ('created', 'processing')`,
    [clientId],
  );
  return Number(rows[0]!.count);
}

/** Completed payouts of a client. */
export async function completedCount(db: Knex, clientId: string): Promise<number> {
  return (await statusCounts(db, clientId)).completed ?? 0;
}

/** Waits until no payout of a client is created or processing; a timeout names the counts by status. */
export async function waitUntilFinal(
  db: Knex,
  clientId: string,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  await waitFor(async () => (await unfinishedCount(db, clientId)) === 0, {
    ...options,
    message: async () => JSON.stringify(await statusCounts(db, clientId)),
  });
}

/** Waits until a payout has `status`, read through the service as `principal`. */
export async function waitForStatus(
  ctx: AppContext,
  principal: Principal,
  id: string,
  status: PayoutStatus,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  await waitFor(async () => (await ctx.service.getPayout(principal, id)).status === status, options);
}

/** Provider effects (rows of `provider_transfers`) per payout of a client. */
export async function providerEffects(
  db: Knex,
  clientId: string,
): Promise<Map<string, { count: number; results: string[] }>> {
  const rows = await query<{ payout_id: string; result: string }>(
    db,
    `SELECT t.payout_id, t.result FROM provider_transfers t JOIN payouts p ON p.id = t.payout_id WHERE p.client_id = ?`,
    [clientId],
  );
  const effects = new Map<string, { count: number; results: string[] }>();
  for (const row of rows) {
    const entry = effects.get(row.payout_id) ?? { count: 0, results: [] };
    entry.count += 1;
    entry.results.push(row.result);
    effects.set(row.payout_id, entry);
  }
  return effects;
}

/** The history of each payout of a client as `from>to` strings, in order. */
export async function histories(db: Knex, clientId: string): Promise<Map<string, string[]>> {
  const rows = await query<{ payout_id: string; from_status: string | null; to_status: string }>(
    db,
    `SELECT e.payout_id, e.from_status, e.to_status FROM payout_events e JOIN payouts p ON p.id = e.payout_id
      WHERE p.client_id = ? ORDER BY e.id`,
    [clientId],
  );
  const result = new Map<string, string[]>();
  for (const row of rows) {
    const list = result.get(row.payout_id) ?? [];
    list.push(`${row.from_status ?? ''}>${row.to_status}`);
    result.set(row.payout_id, list);
  }
  return result;
}

/** Every payout completed, one provider effect each, its status history created→processing→completed once. */
export async function expectAllCompletedOnce(
  ctx: AppContext,
  clientId: string,
  ids: string[],
): Promise<void> {
  expect(await statusCounts(ctx.db, clientId)).to.deep.equal({ completed: ids.length });
  const effects = await providerEffects(ctx.db, clientId);
  expect(effects.size).to.equal(ids.length);
  expect(
    [...effects.values()].filter((effect) => effect.count !== 1 || effect.results[0] !== 'succeeded'),
  ).to.deep.equal([]);
  // Status changes only: re-drives and retries are recorded too, but leave the status as it was.
  const all = new Map(
    [...(await histories(ctx.db, clientId))].map(([id, steps]) => [
      id,
      steps.filter((step) => step.split('>')[0] !== step.split('>')[1]),
    ]),
  );
  const wrong = ids.filter(
    (id) =>
      JSON.stringify(all.get(id)) !==
      JSON.stringify(['>created', 'created>processing', 'processing>completed']),
  );
  expect(wrong).to.deep.equal([]);
}
