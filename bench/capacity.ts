/**
 * `make bench-capacity`: what one process of each part does and what a unit of its work costs, for
 * docs/capacity.md. One run, one database (`payouts_bench_capacity`), every role as its command starts it:
 *
 * 1. The API alone (as `make run` starts it) under create load, `wrk -t1 -c32`: creates/s, CPU ms per create of
 *    the API, of PostgreSQL and of wrk, WAL bytes and commits per create, RSS.
 * 2. The pipeline — a relay, two workers, the sweeper and the webhooks dispatcher — draining the payouts phase 1
 *    created: payouts/s, CPU ms per payout of each role, of PostgreSQL and of RabbitMQ, WAL bytes, commits,
 *    messages published per payout, RSS.
 * 3. One API against two (two ports), the same 32 connections as two `wrk -t1 -c16`, alternating: does the
 *    throughput scale on this machine, and what is the CPU of the box spent on (API, PostgreSQL, the rest).
 *
 * CPU per unit of work comes from /proc (user + system), so it holds on a busy machine where rates do not.
 * PostgreSQL's is the CPU of this database's backends (`postgres`), and of the whole server (`postgres (all)`:
 * the WAL writer, checkpointer and autovacuum too, and any other user of the server); RabbitMQ's is the
 * node listening on the AMQP port (other nodes may run beside it), which other users may share. The box's busy
 * share just before each phase is printed. The disk figures are the whole disk's (/proc/diskstats). Results go
 * to bench/results/capacity-*.json.
 *
 * Env: CAPACITY_SECONDS (8) per measured load, CAPACITY_WARMUP_SECONDS (2), CAPACITY_ROUNDS (2) of the one/two
 * API comparison, CAPACITY_DRAIN_TIMEOUT_SECONDS (600).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import pg from 'pg';
import type { Child, LoadResult } from './lib.js';
import { HarnessError, MAIN, RUN_ARGS } from './lib.js';
import * as harness from './lib.js';

const SECONDS = harness.envInt('CAPACITY_SECONDS', 8);
const WARMUP = harness.envInt('CAPACITY_WARMUP_SECONDS', 2, 0);
const ROUNDS = harness.envInt('CAPACITY_ROUNDS', 2);
const DRAIN_TIMEOUT_S = harness.envInt('CAPACITY_DRAIN_TIMEOUT_SECONDS', 600);
const CONNECTIONS = 32;
const DATABASE = 'payouts_bench_capacity';
const CORES = cpus().length;
/** What `Usage.cpuMs` holds besides this run's processes. */
const SERVERS = ['postgres', 'postgres (all)', 'rabbitmq', 'wrk'];

// ---------------------------------------------------------------------------------------------- meters

/** Cumulative counters at one instant: each process's CPU, the servers', the box's, PostgreSQL's WAL and disk. */
interface Reading {
  at: number;
  cpuMs: Record<string, number>;
  /** CPU ms so far of each backend of this database (but the harness's own), by pid. */
  backends: Map<number, number>;
  box: { busy: number; total: number };
  walBytes: number;
  commits: number;
  disk: { writes: number; sectors: number; flushes: number };
}

/** What happened between two readings. */
interface Usage {
  seconds: number;
  /**
   * CPU ms of each of this run's processes, and of `postgres` (this database's backends), `postgres (all)` (the
   * server's every process: background writers, and any other user's backends), `rabbitmq` (the node on the AMQP
   * port) and `wrk` (the load generators, once they have exited).
   */
  cpuMs: Record<string, number>;
  /** Cores of the box busy on average, whoever used them (0..CORES). */
  boxCores: number;
  walBytes: number;
  commits: number;
  disk: { writes: number; mb: number; flushes: number };
}

const AMQP_PORT = Number(new URL(process.env.AMQP_URL ?? 'amqp://127.0.0.1:5672').port || 5672);

/** The default RabbitMQ node: the process on the AMQP port (other nodes may run beside it). */
const RABBITMQ_PID = harness.pidListeningOn(AMQP_PORT);

/** The PostgreSQL server of the benchmark's database: its postmaster, on the port of BENCH_PG_URL. */
const POSTGRES_PID = harness.pidListeningOn(Number(new URL(harness.PG_BASE).port || 5432));

/** Writes, sectors written and flushes of the machine's disks (not loop, RAM or zram devices). */
function diskCounters(): Reading['disk'] {
  const disks = new Set(readdirSync('/sys/block').filter((name) => !/^(loop|ram|zram|dm-)/.test(name)));
  const sum = { writes: 0, sectors: 0, flushes: 0 };
  for (const line of readFileSync('/proc/diskstats', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (!disks.has(f[2] ?? '')) continue;
    // After major, minor and name: writes completed is field 5, sectors written 7, flushes completed 16.
    sum.writes += Number(f[7]);
    sum.sectors += Number(f[9]);
    sum.flushes += Number(f[18] ?? 0);
  }
  return sum;
}

/** CPU ms so far of every backend connected to the harness's database, but the harness's own connection. */
async function backendCpu(db: pg.Client): Promise<Map<number, number>> {
  const { rows } = await db.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
  );
  const cpu = new Map<number, number>();
  for (const { pid } of rows) {
    try {
      cpu.set(pid, harness.cpuTimeMs(pid));
    } catch {
      // ended meanwhile
    }
  }
  return cpu;
}

/** Reads every counter; `processes` are this run's children, by name. */
async function read(db: pg.Client, processes: Record<string, Child>): Promise<Reading> {
  const { rows } = await db.query<{ wal: string; commits: string }>(
    `SELECT (pg_current_wal_lsn() - '0/0')::text AS wal,
            (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())::text AS commits`,
  );
  const cpuMs: Record<string, number> = {
    'postgres (all)': harness.processTreeCpuMs(POSTGRES_PID),
    rabbitmq: harness.cpuTimeMs(RABBITMQ_PID),
    wrk: harness.reapedChildrenCpuMs(),
  };
  for (const [name, child] of Object.entries(processes)) cpuMs[name] = harness.cpuTimeMs(child.proc.pid);
  return {
    at: performance.now(),
    cpuMs,
    backends: await backendCpu(db),
    box: harness.cpuTimes(),
    walBytes: Number(rows[0]!.wal),
    commits: Number(rows[0]!.commits),
    disk: diskCounters(),
  };
}

/** CPU the backends spent between two readings; one that appeared meanwhile counts from its start. */
function backendsMs(a: Reading, b: Reading): number {
  let sum = 0;
  for (const [pid, ms] of b.backends) sum += ms - (a.backends.get(pid) ?? 0);
  return sum;
}

function usage(a: Reading, b: Reading): Usage {
  const cpuMs = Object.fromEntries(
    Object.keys(b.cpuMs).map((name) => [name, b.cpuMs[name]! - (a.cpuMs[name] ?? 0)]),
  );
  cpuMs.postgres = backendsMs(a, b);
  const boxShare = (b.box.busy - a.box.busy) / Math.max(1, b.box.total - a.box.total);
  return {
    seconds: (b.at - a.at) / 1000,
    cpuMs,
    boxCores: boxShare * CORES,
    walBytes: b.walBytes - a.walBytes,
    // pg_stat_database is flushed by the backends with up to a second of delay: read after a pause (see `measure`).
    commits: b.commits - a.commits,
    disk: {
      writes: b.disk.writes - a.disk.writes,
      mb: ((b.disk.sectors - a.disk.sectors) * 512) / 1e6,
      flushes: b.disk.flushes - a.disk.flushes,
    },
  };
}

/** Runs `work` between two readings; the second is taken after a pause, once the statistics have been flushed. */
async function measure<T>(
  db: pg.Client,
  processes: Record<string, Child>,
  work: () => Promise<T>,
): Promise<{ result: T; usage: Usage }> {
  const before = await read(db, processes);
  const result = await work();
  const end = await read(db, processes);
  await harness.sleep(1500);
  const flushed = await read(db, processes);
  // Everything but the commit count is taken at the end of the work, not after the pause.
  return { result, usage: { ...usage(before, end), commits: flushed.commits - before.commits } };
}

// ---------------------------------------------------------------------------------------------- the API

/** One unit of work measured: its count, rate and what each process and the servers spent on it. */
interface PhaseResult {
  phase: string;
  units: number;
  rate: number;
  busyBefore: number;
  usage: Usage;
  /** CPU ms per unit, by process (and `postgres`, `rabbitmq`). */
  cpuMsPerUnit: Record<string, number>;
  walBytesPerUnit: number;
  commitsPerUnit: number;
  rssMb: Record<string, number>;
  load?: LoadResult[];
}

function perUnit(u: Usage, units: number, names: string[]): Record<string, number> {
  return Object.fromEntries(names.map((name) => [name, (u.cpuMs[name] ?? NaN) / units]));
}

async function startApi(url: string, name: string): Promise<{ child: Child; port: number }> {
  const port = await harness.freePort();
  const child = harness.start(name, 'node', RUN_ARGS, harness.runEnv(port, url), {
    stdoutFile: harness.apiLogFile(),
    onlyEnv: true,
  });
  await harness.waitForHttp(child, port);
  return { child, port };
}

function checkLoad(label: string, result: LoadResult): void {
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0 || result.ok === 0)
    harness.loud(
      `${label}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts, ${result.ok} 2xx`,
    );
}

/**
 * Create load on `ports` at once, one `wrk -t1` each with `connections` connections, after a warm-up: the creates
 * made, and the usage of every process meanwhile.
 */
async function createPhase(
  phase: string,
  db: pg.Client,
  apis: Record<string, { child: Child; port: number }>,
  targets: string[],
  connections: number,
  headers: Record<string, string>,
): Promise<PhaseResult> {
  const spec = (port: number, seconds: number) => ({
    ...harness.createLoad(headers, seconds, connections),
    port,
  });
  if (WARMUP > 0) await Promise.all(targets.map((name) => harness.load(spec(apis[name]!.port, WARMUP))));
  const busyBefore = await harness.cpuBusy(1000);
  const processes = Object.fromEntries(Object.entries(apis).map(([name, api]) => [name, api.child]));
  const payoutsBefore = await countPayouts(db);
  const { result, usage: u } = await measure(db, processes, () =>
    Promise.all(targets.map((name) => harness.load(spec(apis[name]!.port, SECONDS)))),
  );
  result.forEach((r, i) => checkLoad(`${phase} (${targets[i]})`, r));
  const created = (await countPayouts(db)) - payoutsBefore;
  const ok = result.reduce((sum, r) => sum + r.ok, 0);
  // wrk does not count the requests still in flight when it stops (at most one per connection), the server does.
  if (created < ok || created > ok + connections * targets.length)
    harness.loud(`${phase}: ${ok} answers 2xx but ${created} payouts written`);
  return {
    phase,
    units: created,
    rate: result.reduce((sum, r) => sum + r.rps, 0),
    busyBefore,
    usage: u,
    cpuMsPerUnit: perUnit(u, created, [...Object.keys(apis), ...SERVERS]),
    walBytesPerUnit: u.walBytes / created,
    commitsPerUnit: u.commits / created,
    rssMb: Object.fromEntries(
      Object.entries(apis).map(([name, api]) => [name, harness.peakRssMb(api.child.proc.pid)]),
    ),
    load: result,
  };
}

async function countPayouts(db: pg.Client): Promise<number> {
  const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM payouts');
  return Number(rows[0]!.n);
}

// ---------------------------------------------------------------------------------------------- the pipeline

const PIPELINE = [
  ['relay', 'relay'],
  ['worker 1', 'worker'],
  ['worker 2', 'worker'],
  ['sweeper', 'sweeper'],
  ['webhooks', 'webhooks'],
] as const;

async function unfinished(db: pg.Client): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    "SELECT count(*) AS n FROM payouts WHERE status IN ('created', 'processing')",
  );
  return Number(rows[0]!.n);
}

/** Polls (on one connection, 200 ms) until no payout is unfinished; prints progress every 5 s. */
async function waitUntilDrained(db: pg.Client, roles: Child[], total: number): Promise<void> {
  const started = performance.now();
  let lastPrint = started;
  for (;;) {
    const left = await unfinished(db);
    if (left === 0) return;
    for (const role of roles)
      if (role.proc.exitCode !== null)
        throw new HarnessError(`${role.name} exited with ${role.proc.exitCode}:\n${role.output()}`);
    const now = performance.now();
    if (now - started > DRAIN_TIMEOUT_S * 1000) {
      harness.loud(`drain did not finish within ${DRAIN_TIMEOUT_S} s: ${left} payouts unfinished`);
      return;
    }
    if (now - lastPrint > 5000) {
      lastPrint = now;
      process.stdout.write(`  ${harness.fmt((now - started) / 1000)} s: ${total - left} of ${total} final\n`);
    }
    await harness.sleep(200);
  }
}

/**
 * Starts every pipeline role (the workers before the relay, so nothing is published before they consume), then
 * measures from the relay's start until every payout is final.
 */
async function drainPhase(
  db: pg.Client,
  url: string,
): Promise<PhaseResult & { checks: DrainChecks; relayStartCpuMs: number }> {
  const waiting = await unfinished(db);
  const roles: Record<string, Child> = {};
  for (const [name, role] of PIPELINE.filter(([, role]) => role !== 'relay'))
    roles[name] = await harness.startPipelineRole(name, role, url);
  const busyBefore = await harness.cpuBusy(1000);
  process.stdout.write(`draining ${waiting} payouts (other load ${harness.fmt(busyBefore * 100, 0)}%)…\n`);
  const before = await read(db, roles);
  roles.relay = await harness.startPipelineRole('relay', 'relay', url);
  // The relay's CPU counts from when it is ready (as bench-drain counts it): its start-up is not work per payout.
  const relayStartCpuMs = harness.cpuTimeMs(roles.relay.proc.pid);
  before.cpuMs.relay = relayStartCpuMs;
  await waitUntilDrained(db, Object.values(roles), waiting);
  const end = await read(db, roles);
  await harness.sleep(1500);
  const flushed = await read(db, roles);
  const u = { ...usage(before, end), commits: flushed.commits - before.commits };
  const rssMb = Object.fromEntries(
    Object.entries(roles).map(([name, child]) => [name, harness.peakRssMb(child.proc.pid)]),
  );
  const checks = await drainChecks(db);
  for (const child of Object.values(roles).reverse()) await harness.stop(child);
  return {
    phase: 'pipeline drain',
    units: waiting,
    rate: waiting / u.seconds,
    busyBefore,
    usage: u,
    cpuMsPerUnit: perUnit(u, waiting, [...Object.keys(roles), ...SERVERS]),
    walBytesPerUnit: u.walBytes / waiting,
    commitsPerUnit: u.commits / waiting,
    rssMb,
    checks,
    relayStartCpuMs,
  };
}

interface DrainChecks {
  completed: number;
  notCompleted: number;
  paidTwice: number;
  unsent: number;
  /** Outbox rows a relay claimed (published or tried), per payout: the messages the broker carried. */
  messagesPerPayout: number;
  outboxRowsPerPayout: number;
  historyRowsPerPayout: number;
}

async function drainChecks(db: pg.Client): Promise<DrainChecks> {
  const { rows } = await db.query<Record<keyof DrainChecks, string>>(
    `SELECT (SELECT count(*) FROM payouts WHERE status = 'completed') AS completed,
            (SELECT count(*) FROM payouts WHERE status <> 'completed') AS "notCompleted",
            (SELECT count(*) FROM (SELECT payout_id FROM provider_transfers GROUP BY payout_id
                                    HAVING count(*) > 1) t) AS "paidTwice",
            (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS unsent,
            (SELECT count(*) FILTER (WHERE attempts > 0)::float / count(DISTINCT payout_id) FROM outbox)
              AS "messagesPerPayout",
            (SELECT count(*)::float / count(DISTINCT payout_id) FROM outbox) AS "outboxRowsPerPayout",
            (SELECT count(*)::float / count(DISTINCT payout_id) FROM payout_events) AS "historyRowsPerPayout"`,
  );
  const result = Object.fromEntries(
    Object.entries(rows[0]!).map(([name, value]) => [name, Number(value)]),
  ) as unknown as DrainChecks;
  if (result.notCompleted > 0) harness.loud(`${result.notCompleted} payouts did not complete`);
  if (result.paidTwice > 0) harness.loud(`${result.paidTwice} payouts have more than one provider effect`);
  if (result.unsent > 0) harness.loud(`${result.unsent} outbox rows left unsent`);
  return result;
}

/**
 * Bytes per payout of each table a payout writes (indexes and TOAST included), once drained: on tables this small
 * (and the outbox not yet pruned) more than at scale; bench/README has the figure at 5,000,000 payouts.
 */
async function bytesPerPayout(db: pg.Client): Promise<Record<string, number>> {
  const tables = ['payouts', 'payout_events', 'outbox', 'idempotency_keys'];
  const payouts = await countPayouts(db);
  const storage: Record<string, number> = {};
  for (const table of tables) {
    const { rows } = await db.query<{ bytes: string }>('SELECT pg_total_relation_size($1)::text AS bytes', [
      table,
    ]);
    storage[table] = Number(rows[0]!.bytes) / payouts;
  }
  process.stdout.write(
    `  bytes per payout (indexes included, ${payouts} payouts): ${Object.entries(storage)
      .map(([table, bytes]) => `${table} ${harness.fmt(bytes, 0)}`)
      .join(', ')}\n`,
  );
  return storage;
}

// ---------------------------------------------------------------------------------------------- printing

function printPhase(r: PhaseResult): void {
  const u = r.usage;
  const cores = Object.entries(u.cpuMs)
    .map(([name, ms]) => `${name} ${harness.fmt(ms / 1000 / u.seconds, 2)}`)
    .join(', ');
  process.stdout.write(
    `\n${r.phase}: ${r.units} in ${harness.fmt(u.seconds, 1)} s = ${harness.fmt(r.rate)} /s ` +
      `(other load before ${harness.fmt(r.busyBefore * 100, 0)}%)\n` +
      `  CPU ms per unit: ${Object.entries(r.cpuMsPerUnit)
        .map(([name, ms]) => `${name} ${harness.fmt(ms, 3)}`)
        .join(', ')}\n` +
      `  cores busy: box ${harness.fmt(u.boxCores, 2)} of ${CORES}; ${cores}\n` +
      `  WAL ${harness.fmt(r.walBytesPerUnit, 0)} B/unit (${harness.fmt(u.walBytes / 1e6 / u.seconds, 1)} MB/s), ` +
      `commits ${harness.fmt(r.commitsPerUnit, 2)}/unit; disk (whole machine) ` +
      `${harness.fmt(u.disk.writes / u.seconds, 0)} writes/s, ${harness.fmt(u.disk.flushes / u.seconds, 0)} flushes/s, ` +
      `${harness.fmt(u.disk.mb / u.seconds, 1)} MB/s\n` +
      `  peak RSS MB: ${Object.entries(r.rssMb)
        .map(([name, mb]) => `${name} ${harness.fmt(mb, 0)}`)
        .join(', ')}\n`,
  );
  for (const l of r.load ?? [])
    process.stdout.write(
      `  wrk: ${harness.fmt(l.rps)} req/s, p50 ${harness.fmt(l.p50)} ms, p99 ${harness.fmt(l.p99)} ms, ` +
        `2xx ${l.ok}, non-2xx ${l.non2xx}, errors ${l.errors}\n`,
    );
}

/** Cores this run used on average: its processes, its database's backends, the broker and wrk. */
function runCores(u: Usage): number {
  const ms = Object.entries(u.cpuMs).reduce(
    (sum, [name, value]) => (name === 'postgres (all)' ? sum : sum + value),
    0,
  );
  return ms / 1000 / u.seconds;
}

function printTable(results: PhaseResult[]): void {
  const header = [
    'phase',
    'units',
    '/s',
    'API',
    'PG',
    'PG all',
    'relay',
    'workers',
    'RMQ',
    'wrk',
    'run cores',
    'box cores',
  ];
  const ms = (value: number | undefined) => (value === undefined ? '' : harness.fmt(value, 3));
  const rows = results.map((r) => {
    const c = r.cpuMsPerUnit;
    const sum = (names: string[]) =>
      names.some((name) => name in c) ? names.reduce((total, name) => total + (c[name] ?? 0), 0) : undefined;
    return [
      r.phase,
      String(r.units),
      harness.fmt(r.rate),
      ms(sum(['api', 'api 2'])),
      ms(c.postgres),
      ms(c['postgres (all)']),
      ms(c.relay),
      ms(sum(['worker 1', 'worker 2'])),
      ms(c.rabbitmq),
      ms(c.wrk),
      harness.fmt(runCores(r.usage), 2),
      harness.fmt(r.usage.boxCores, 2),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  process.stdout.write(
    `\nCPU ms per unit (a create, or a payout drained), PG = this database's backends; cores busy on average ` +
      `(run: this run's processes, its backends, the broker, wrk; box: the whole machine):\n` +
      `${line(header)}\n${rows.map(line).join('\n')}\n`,
  );
}

// ---------------------------------------------------------------------------------------------- main

async function main(): Promise<void> {
  if (!existsSync(MAIN))
    throw new HarnessError(`${MAIN} is missing: run \`make bench-capacity\` (it builds)`);
  process.stdout.write(
    `make bench-capacity: ${SECONDS} s loads (+${WARMUP} s warm-up), ${CORES} cores, one database ${DATABASE}\n`,
  );
  const { url, apiKey } = await harness.prepareServiceDatabase(DATABASE);
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` };
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const results: PhaseResult[] = [];
  try {
    const one = { api: await startApi(url, 'api') };
    results.push(await createPhase('1 API, 1 wrk × 32', db, one, ['api'], CONNECTIONS, headers));
    printPhase(results[results.length - 1]!);
    await harness.stop(one.api.child);

    const drained = await drainPhase(db, url);
    results.push(drained);
    printPhase(drained);
    process.stdout.write(
      `  checks: ${JSON.stringify(drained.checks)}; the relay's start-up, not counted: ` +
        `${harness.fmt(drained.relayStartCpuMs, 0)} ms of CPU\n`,
    );
    const storage = await bytesPerPayout(db);

    const two = { api: await startApi(url, 'api'), 'api 2': await startApi(url, 'api 2') };
    for (let round = 1; round <= ROUNDS; round += 1) {
      // The same load generators (two wrk × 16) against one API, then split across two.
      const half = CONNECTIONS / 2;
      results.push(
        await createPhase(`1 API, 2 wrk × 16 (#${round})`, db, two, ['api', 'api'], half, headers),
      );
      printPhase(results[results.length - 1]!);
      results.push(
        await createPhase(`2 APIs, 2 wrk × 16 (#${round})`, db, two, ['api', 'api 2'], half, headers),
      );
      printPhase(results[results.length - 1]!);
    }
    for (const api of Object.values(two)) await harness.stop(api.child);
    printTable(results);
    const file = harness.writeResults('capacity', {
      at: new Date().toISOString(),
      cores: CORES,
      settings: { seconds: SECONDS, warmup: WARMUP, rounds: ROUNDS, connections: CONNECTIONS },
      results,
      storage,
      problems: harness.problems,
    });
    process.stdout.write(`\nresults: ${file}\n`);
  } finally {
    await db.end();
  }
  harness.reportProblems();
}

await harness.runMain('bench-capacity', main, { deleteTopology: true });
