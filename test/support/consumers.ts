/**
 * Helpers of the consumer tests: a configuration on the run's database with a namespace of queues of its own
 * (with `x-expires`, so a crashed run leaves nothing behind), contexts with small pools, bulk creation through the
 * service, and the counts the tests assert on.
 */
import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { Connection } from 'rabbitmq-client';
import type { Config } from '../../src/config.js';
import { loadConfig } from '../../src/config.js';
import { topologyOptions } from '../../src/consumers/role.js';
import { declareTopology, deleteTopology } from '../../src/consumers/topology.js';
import type { AppContext } from '../../src/context.js';
import { createContext } from '../../src/context.js';
import type { CreatePayoutInput } from '../../src/domain/payout-service.js';
import type { Principal } from '../../src/domain/principal.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { testDatabaseUrl } from './database.js';
import { payoutInput } from './fixtures.js';

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

export async function waitFor(
  condition: () => Promise<boolean> | boolean,
  options: {
    timeoutMs?: number;
    intervalMs?: number;
    message?: string | (() => Promise<string> | string);
  } = {},
): Promise<void> {
  const { timeoutMs = 30_000, intervalMs = 100 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) {
      const message = typeof options.message === 'function' ? await options.message() : options.message;
      throw new Error(`timed out after ${timeoutMs} ms${message ? `: ${message}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
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
        const created = await ctx.service.createPayout(principal, input(index), {
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
