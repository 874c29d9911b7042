/**
 * `make bench-scale`: whether the service's cost grows with its tables. The suite of `make bench` (bench/suite.ts)
 * plus three reads — a list page filtered by status, one filtered by currency, a payout's history — runs twice in
 * one run: on empty tables, then on `SCALE_PAYOUTS` (5,000,000) payouts seeded in set-based SQL (scripts/seed.ts:
 * 1,000 clients, one holding a fifth, statuses and currencies spread like production, with their history, messages,
 * outcomes and deliveries), the floor's own table seeded to the same size. The "empty" tables hold
 * `SCALE_EMPTY_PAYOUTS` (1,000) payouts seeded the same way, so that both runs read the same client (the one holding
 * a fifth: 200 payouts, then 1,000,000) and a page filtered by `status=completed` is a full page in both, not an
 * empty one; the creates are a client of their own in both runs. Then each ratio is compared with its empty-table value (target: within
 * 15 %), the filtered list's p99 with its empty-table p99 (target ≤ 2 ×), and the storage a completed payout takes
 * is reported (target ≤ 2 KiB). Every database it made is dropped at the end (unless SCALE_KEEP_DATABASES=1).
 *
 * Env: SCALE_PAYOUTS (5000000), SCALE_EMPTY_PAYOUTS (1000), SCALE_CLIENTS (1000), SCALE_KEEP_DATABASES (0), and the
 * suite's (bench/suite.ts).
 */
import { join } from 'node:path';
import type * as SeedModule from '../scripts/seed.js';
import type { SuiteOptions, SuiteResult } from './suite.js';
import { runSuite } from './suite.js';
import {
  LIMITS,
  dbUrl,
  envInt,
  fmt,
  freePort,
  issueKey,
  prepareServiceDatabase,
  problems,
  recreateDatabase,
  reportProblems,
  runMain,
  start,
  stop,
  verdict,
  waitForHttp,
  withPg,
  writeResults,
} from './lib.js';

const PAYOUTS = envInt('SCALE_PAYOUTS', 5_000_000);
const EMPTY_PAYOUTS = envInt('SCALE_EMPTY_PAYOUTS', 1000);
/** `SCALE_KEEP_DATABASES=1` leaves the seeded databases in place at the end, to look into a plan. */
const KEEP_DATABASES = process.env.SCALE_KEEP_DATABASES === '1';
const CLIENTS = envInt('SCALE_CLIENTS', 1000, 2);
/** The client holding a fifth of the payouts: the first seeded one (scripts/seed.ts). */
const BIG_CLIENT = 'seed-000001';
const RATIO_TOLERANCE = 0.15;
const FILTERED_P99_TARGET = 2;
const BYTES_PER_PAYOUT_TARGET = 2048;
const DATABASES = ['payouts_bench_scale', 'payouts_bench_scale_floor'];

const EXTRA_READS: SuiteOptions['extraReads'] = [
  { kind: 'read:list-status', floor: 'list1', path: () => '/api/payouts?limit=20&status=completed' },
  { kind: 'read:list-currency', floor: 'list1', path: () => '/api/payouts?limit=20&currency=EUR' },
  { kind: 'read:events', floor: 'read1', path: (ids) => ids.map((id) => `/api/payouts/${id}/events`) },
];

/**
 * A migrated service database, seeded when `payouts` is given, with a key of the client `bench` for the creates and
 * one of `client` for the reads: no worker runs here, and tens of thousands of payouts left `created` at the head of
 * the read client's list would be what no production list looks like.
 */
async function serviceDatabase(
  client: string,
  payouts: number,
): Promise<{ url: string; apiKey: string; readKey: string }> {
  const { url, apiKey } = await prepareServiceDatabase(DATABASES[0]!, async (seeded) => {
    if (payouts === 0) return;
    const { seed }: typeof SeedModule = await import('../scripts/seed.js');
    const started = Date.now();
    await withPg(seeded, (pg) => seed(pg, { payouts, clients: CLIENTS, bigClientShare: 0.2 }));
    process.stdout.write(
      `seeded ${payouts} payouts (${CLIENTS} clients) in ${fmt((Date.now() - started) / 1000)} s\n`,
    );
  });
  return { url, apiKey, readKey: client === 'bench' ? apiKey : await issueKey(url, client) };
}

/** The floor's database, its tables made by the floor itself, seeded to `payouts` rows when given. */
async function floorDatabase(payouts: number): Promise<string> {
  const url = await recreateDatabase(DATABASES[1]!);
  if (payouts === 0) return url;
  const port = await freePort();
  const floor = start('floor tables', 'node', [join(LIMITS, 'http_floor.mjs'), String(port), 'create1'], {
    FLOOR_DATABASE_URL: url,
  });
  try {
    await waitForHttp(floor, port);
  } finally {
    await stop(floor);
  }
  const started = Date.now();
  await withPg(url, async (pg) => {
    await pg.query(
      `INSERT INTO floor_payouts (id, amount, currency, recipient, status, snapshot, version, created_at, updated_at)
       SELECT gen_random_uuid(), 12.5, 'EUR', '{"type":"iban","iban":"DE89370400440532013000","holder_name":"Seed"}',
              'completed', '{"value":"completed"}', 3, at, at
         FROM (SELECT now() - make_interval(secs => ($1::integer - i) * 2) AS at
                 FROM generate_series(1, $1::integer) i) s`,
      [payouts],
    );
    await pg.query(
      `INSERT INTO floor_history (payout_id, from_state, to_state, event, at)
       SELECT id, NULL, 'created', 'CREATE', created_at FROM floor_payouts`,
    );
    await pg.query('VACUUM ANALYZE');
  });
  process.stdout.write(`seeded the floor's ${payouts} rows in ${fmt((Date.now() - started) / 1000)} s\n`);
  return url;
}

/** Bytes per payout of the payouts, their history and the outbox, indexes and TOAST included. */
async function bytesPerPayout(url: string): Promise<{
  bytes: number;
  payouts: number;
  tables: { payouts: number; payout_events: number; outbox: number };
}> {
  return withPg(url, async (pg) => {
    const { rows } = await pg.query<{ payouts: string; p: string; h: string; o: string }>(
      `SELECT (SELECT count(*) FROM payouts) AS payouts, pg_total_relation_size('payouts') AS p,
              pg_total_relation_size('payout_events') AS h, pg_total_relation_size('outbox') AS o`,
    );
    const row = rows[0]!;
    const payouts = Number(row.payouts);
    const tables = { payouts: Number(row.p), payout_events: Number(row.h), outbox: Number(row.o) };
    return { bytes: (tables.payouts + tables.payout_events + tables.outbox) / payouts, payouts, tables };
  });
}

async function phase(label: string, payouts: number, client: string): Promise<SuiteResult> {
  process.stdout.write(`\n=== ${label}\n`);
  const floorUrl = await floorDatabase(payouts);
  const { url: serviceUrl, apiKey, readKey } = await serviceDatabase(client, payouts);
  return runSuite({ serviceUrl, floorUrl, apiKey, readKey, clientName: client, extraReads: EXTRA_READS });
}

async function main(): Promise<void> {
  process.stdout.write(`make bench-scale: the suite on empty tables, then on ${PAYOUTS} payouts\n`);
  const empty = await phase(`empty tables (${EMPTY_PAYOUTS} payouts)`, EMPTY_PAYOUTS, BIG_CLIENT);
  const scale = await phase(`${PAYOUTS} payouts`, PAYOUTS, BIG_CLIENT);
  const storage = await bytesPerPayout(dbUrl(DATABASES[0]!));

  process.stdout.write(
    `\nat ${PAYOUTS} payouts against empty tables (throughput ratio to the floor; within ${RATIO_TOLERANCE * 100} %)\n`,
  );
  const comparison: Record<string, { empty: number; scale: number; change: number; ok: boolean }> = {};
  for (const kind of Object.keys(empty.summary)) {
    const before = empty.summary[kind]!.throughputRatio!;
    const after = scale.summary[kind]?.throughputRatio ?? NaN;
    const change = after / before - 1;
    const ok = Math.abs(change) <= RATIO_TOLERANCE || change > 0;
    comparison[kind] = { empty: before, scale: after, change, ok };
    process.stdout.write(
      `  ${kind.padEnd(20)} ${fmt(before, 2)} → ${fmt(after, 2)}  (${change >= 0 ? '+' : ''}${fmt(change * 100, 0)} %)  ${verdict(ok)}\n`,
    );
  }
  const filtered = 'read:list-status';
  const p99 = { empty: empty.summary[filtered]!.serviceP99!, scale: scale.summary[filtered]!.serviceP99! };
  const p99Growth = p99.scale / p99.empty;
  process.stdout.write(
    `  filtered list p99 (${BIG_CLIENT}, status=completed): ${fmt(p99.empty)} → ` +
      `${fmt(p99.scale)} ms = × ${fmt(p99Growth, 2)}   target ≤ ${FILTERED_P99_TARGET}   ` +
      `${verdict(p99Growth <= FILTERED_P99_TARGET)}\n`,
  );
  const mb = (bytes: number) => `${fmt(bytes / 1024 / 1024, 0)} MB`;
  process.stdout.write(
    `  storage: ${fmt(storage.bytes, 0)} bytes per payout (payouts ${mb(storage.tables.payouts)}, history ` +
      `${mb(storage.tables.payout_events)}, outbox ${mb(storage.tables.outbox)}, with indexes, for ` +
      `${storage.payouts} payouts)   target ≤ ${BYTES_PER_PAYOUT_TARGET}   ${verdict(storage.bytes <= BYTES_PER_PAYOUT_TARGET)}\n`,
  );
  const file = writeResults('scale', {
    at: new Date().toISOString(),
    payouts: PAYOUTS,
    clients: CLIENTS,
    empty: empty.summary,
    scale: scale.summary,
    comparison,
    filteredListP99Growth: p99Growth,
    storage,
    runs: { empty: empty.runs, scale: scale.runs },
    problems,
  });
  process.stdout.write(`\nresults: ${file}\n`);
  reportProblems();
}

await runMain(
  'bench-scale',
  async () => {
    try {
      await main();
    } finally {
      if (KEEP_DATABASES) {
        process.stdout.write(`kept for a look: ${DATABASES.join(', ')} (drop them when done)\n`);
      } else {
        await withPg(dbUrl('postgres'), async (pg) => {
          for (const name of DATABASES) await pg.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        });
      }
    }
  },
  { deleteTopology: true },
);
