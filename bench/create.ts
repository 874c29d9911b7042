/**
 * `make bench`: the API exactly as `make run` starts it, against the one-statement limit, alternating, in one run.
 *
 * Create: `../shared/limits/http_floor.mjs PORT create1` (bare node:http, the same writes as one prepared
 * statement) and the API (built, `node dist/src/main.js api`, its default settings: log level, pool size), each
 * loaded by wrk (`-t1 -c32 -d8s`) with the same valid body and a fresh `Idempotency-Key` on every request. Reads:
 * `GET /api/payouts/{id}` and `GET /api/payouts?limit=20` against the same probe's `read1` / `list1` (one
 * prepared query on bare node:http, on the floor's own table as its create runs filled it).
 * Prints every run, the medians, the ratios next to their targets, non-2xx counts and the API's peak RSS.
 *
 * Env: BENCH_SECONDS (8) per run, BENCH_WARMUP_SECONDS (2), BENCH_ROUNDS (2), BENCH_CONNECTIONS (32), BENCH_READS
 * (1; 0 skips the reads), BENCH_SELF_TEST (1: the floor plays the service too, an A/A check of the harness).
 * Exits non-zero on a harness error or any non-2xx response; a missed target is reported, not a failure.
 */
import { join } from 'node:path';
import type { Child, LoadResult, LoadSpec } from './lib.js';
/** The harness's settings and types. */
import { CONNECTIONS, HarnessError, LIMITS, RUN_ARGS } from './lib.js';
/** The harness's steps. */
import {
  count,
  cpuTimeMs,
  createLoad,
  envInt,
  fmt,
  freePort,
  load,
  loud,
  median,
  peakRssMb,
  prepareServiceDatabase,
  problems,
  recreateDatabase,
  runEnv,
  apiLogFile,
  reportProblems,
  runMain,
  sleep,
  start,
  stop,
  verdict,
  waitForHttp,
  waitForQuietMachine,
  withPg,
  writeResults,
} from './lib.js';

const SECONDS = envInt('BENCH_SECONDS', 8);
const WARMUP = envInt('BENCH_WARMUP_SECONDS', 2, 0);
const ROUNDS = envInt('BENCH_ROUNDS', 2);
const READS = process.env.BENCH_READS !== '0';
const SELF_TEST = process.env.BENCH_SELF_TEST === '1';

/** Create: ≥ 0.6 of the limit's throughput, p99 ≤ 1.5 × its p99; reads ≥ 0.7 of theirs; API RSS ≤ 150 MB. */
const TARGETS = {
  create: { throughput: 0.6, p99: 1.5 },
  'read:id': { throughput: 0.7, p99: Infinity },
  'read:list': { throughput: 0.7, p99: Infinity },
} as const;
const RSS_TARGET_MB = 150;

interface Target {
  name: 'floor' | 'service';
  start(port: number): Child;
  /** SQL counting the rows a create writes, to prove every 2xx made a new payout (no replays). */
  rowsSql: string;
}

interface Run {
  kind: string;
  round: number;
  target: string;
  result: LoadResult;
  rowsCreated?: number;
  rssMb: number;
  /** Peak RSS once listening, before any load, in MB. */
  rssAtStartMb: number;
  /** CPU time of the server process per request, in ms (user + system). */
  cpuMsPerRequest: number;
  /** Share of the CPU busy with other work just before the run (0..1). */
  busyBefore: number;
}

const runs: Run[] = [];
function printRun(entry: Run): void {
  const r = entry.result;
  const rows = entry.rowsCreated === undefined ? '' : `  rows +${entry.rowsCreated}`;
  process.stdout.write(
    `  ${entry.kind.padEnd(7)} round ${entry.round}  ${entry.target.padEnd(7)}  ${fmt(r.rps).padStart(8)} req/s` +
      `  p50 ${fmt(r.p50).padStart(6)} ms  p99 ${fmt(r.p99).padStart(6)} ms  2xx ${String(r.ok).padStart(6)}` +
      `  non-2xx ${r.non2xx}  errors ${r.errors}  CPU ${fmt(entry.cpuMsPerRequest, 2)} ms/req` +
      `  RSS ${fmt(entry.rssMb, 0)} MB (${fmt(entry.rssAtStartMb, 0)} idle)${rows}` +
      `  (other load ${fmt(entry.busyBefore * 100, 0)}%)\n`,
  );
}

function check(label: string, result: LoadResult): void {
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0 || result.ok === 0) {
    loud(
      `${label}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts, ` +
        `${result.ok} 2xx`,
    );
  }
}

async function bench(
  kind: string,
  round: number,
  target: Target,
  specs: Array<Omit<LoadSpec, 'port'>>,
  url: string,
) {
  const busyBefore = await waitForQuietMachine();
  const port = await freePort();
  const child = target.start(port);
  try {
    await waitForHttp(child, port);
    const rssAtStart = peakRssMb(child.proc.pid);
    for (const spec of specs) {
      if (WARMUP > 0) check(`${kind} warm-up ${target.name}`, await load({ ...spec, port, seconds: WARMUP }));
    }
    for (const [index, spec] of specs.entries()) {
      const before = kind === 'create' ? await count(url, target.rowsSql) : 0;
      const cpuBefore = cpuTimeMs(child.proc.pid);
      const result = await load({ ...spec, port });
      const cpuMs = cpuTimeMs(child.proc.pid) - cpuBefore;
      await sleep(200);
      const rowsCreated = kind === 'create' ? (await count(url, target.rowsSql)) - before : undefined;
      const entry: Run = {
        kind: specs.length > 1 ? `${kind}${index === 0 ? ':id' : ':list'}` : kind,
        round,
        target: target.name,
        result,
        rowsCreated,
        rssMb: peakRssMb(child.proc.pid),
        rssAtStartMb: rssAtStart,
        cpuMsPerRequest: cpuMs / Math.max(1, result.total),
        busyBefore,
      };
      runs.push(entry);
      printRun(entry);
      check(`${entry.kind} round ${round} ${target.name}`, result);
      if (rowsCreated !== undefined && rowsCreated < result.ok) {
        loud(`${entry.kind} ${target.name}: ${result.ok} 2xx but only ${rowsCreated} new rows (replays?)`);
      }
    }
  } finally {
    await stop(child);
  }
}

function summarise(kind: keyof typeof TARGETS): Record<string, number> {
  const target = TARGETS[kind];
  const of = (target: string, pick: (r: Run) => number) =>
    median(runs.filter((r) => r.kind === kind && r.target === target).map(pick));
  const floor = { rps: of('floor', (r) => r.result.rps), p99: of('floor', (r) => r.result.p99) };
  const service = { rps: of('service', (r) => r.result.rps), p99: of('service', (r) => r.result.p99) };
  const p50 = { floor: of('floor', (r) => r.result.p50), service: of('service', (r) => r.result.p50) };
  const cpu = {
    floor: of('floor', (r) => r.cpuMsPerRequest),
    service: of('service', (r) => r.cpuMsPerRequest),
  };
  const rss = Math.max(...runs.filter((r) => r.kind === kind && r.target === 'service').map((r) => r.rssMb));
  const throughput = service.rps / floor.rps;
  const p99 = service.p99 / floor.p99;
  process.stdout.write(
    `\n${kind}: medians of ${ROUNDS} rounds × ${SECONDS} s at ${CONNECTIONS} connections\n` +
      `  floor    ${fmt(floor.rps).padStart(8)} req/s  p50 ${fmt(p50.floor)} ms  p99 ${fmt(floor.p99)} ms` +
      `  CPU ${fmt(cpu.floor, 2)} ms/req\n` +
      `  service  ${fmt(service.rps).padStart(8)} req/s  p50 ${fmt(p50.service)} ms  p99 ${fmt(service.p99)} ms` +
      `  CPU ${fmt(cpu.service, 2)} ms/req (× ${fmt(cpu.service / cpu.floor, 1)})\n` +
      `  throughput service/floor = ${fmt(throughput, 2)}   target ≥ ${target.throughput}   ${verdict(throughput >= target.throughput)}\n` +
      (Number.isFinite(target.p99)
        ? `  p99        service/floor = ${fmt(p99, 2)}   target ≤ ${target.p99}   ${verdict(p99 <= target.p99)}\n`
        : `  p99        service/floor = ${fmt(p99, 2)}\n`) +
      `  API peak RSS (VmHWM)     = ${fmt(rss, 0)} MB   target ≤ ${RSS_TARGET_MB} MB ${verdict(rss <= RSS_TARGET_MB)}\n`,
  );
  return {
    floorRps: floor.rps,
    floorP50: p50.floor,
    floorP99: floor.p99,
    serviceRps: service.rps,
    serviceP50: p50.service,
    serviceP99: service.p99,
    throughputRatio: throughput,
    p99Ratio: p99,
    apiPeakRssMb: rss,
    floorCpuMsPerRequest: cpu.floor,
    serviceCpuMsPerRequest: cpu.service,
  };
}

async function main(): Promise<void> {
  process.stdout.write(
    `make bench: ${ROUNDS} rounds × ${SECONDS} s (+${WARMUP} s warm-up) at ${CONNECTIONS} connections, ` +
      `wrk -t1, the API as \`make run\` starts it${SELF_TEST ? ', SELF TEST (floor vs floor)' : ''}\n`,
  );

  const { url: serviceUrl, apiKey } = await prepareServiceDatabase('payouts_bench');
  const floorUrl = await recreateDatabase('payouts_bench_floor');
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` };

  const floorProbe = join(LIMITS, 'http_floor.mjs');
  const floor: Target = {
    name: 'floor',
    start: (port) =>
      start('floor', 'node', [floorProbe, String(port), 'create1'], { FLOOR_DATABASE_URL: floorUrl }),
    rowsSql: 'SELECT count(*) AS n FROM floor_payouts',
  };
  const service: Target = SELF_TEST
    ? { ...floor, name: 'service' }
    : {
        name: 'service',
        start: (port) =>
          start('api', 'node', RUN_ARGS, runEnv(port, serviceUrl), {
            stdoutFile: apiLogFile(),
            onlyEnv: true,
          }),
        rowsSql: 'SELECT count(*) AS n FROM payouts',
      };
  const createSpec = createLoad(headers, SECONDS, CONNECTIONS);

  process.stdout.write('\ncreate: POST /api/payouts, a fresh Idempotency-Key on every request\n');
  for (let round = 1; round <= ROUNDS; round += 1) {
    await bench('create', round, floor, [createSpec], floorUrl);
    await bench('create', round, service, [createSpec], SELF_TEST ? floorUrl : serviceUrl);
  }
  const summary: Record<string, Record<string, number>> = { create: summarise('create') };

  if (READS) {
    // Each reads what its own create runs wrote: the floor its table, the API the payouts of the bench's client.
    const floorIds = await floorFixtures(floorUrl);
    const serviceIds = SELF_TEST ? floorIds : await readFixtures(serviceUrl);
    const readFloorTarget: Target = {
      name: 'floor',
      start: (port) =>
        start('read floor', 'node', [floorProbe, String(port), 'read1'], { FLOOR_DATABASE_URL: floorUrl }),
      rowsSql: '',
    };
    const readService: Target = SELF_TEST
      ? { ...readFloorTarget, name: 'service' }
      : { ...service, rowsSql: '' };
    const base = { method: 'GET' as const, headers, seconds: SECONDS, connections: CONNECTIONS };
    const readSpecs = (ids: string[]) => [
      { ...base, path: ids.map((id) => `/api/payouts/${id}`) },
      { ...base, path: '/api/payouts?limit=20' },
    ];
    process.stdout.write(
      `\nreads: GET /api/payouts/{id} (${serviceIds.length} ids at random) and GET /api/payouts?limit=20\n`,
    );
    for (let round = 1; round <= ROUNDS; round += 1) {
      await bench('read', round, readFloorTarget, readSpecs(floorIds), floorUrl);
      await bench('read', round, readService, readSpecs(serviceIds), serviceUrl);
    }
    summary.readById = summarise('read:id');
    summary.readList = summarise('read:list');
  }

  const file = writeResults('create', {
    at: new Date().toISOString(),
    selfTest: SELF_TEST,
    settings: {
      seconds: SECONDS,
      warmup: WARMUP,
      rounds: ROUNDS,
      connections: CONNECTIONS,
    },
    targets: { ...TARGETS, rssMb: RSS_TARGET_MB },
    summary,
    runs,
    problems,
  });
  process.stdout.write(`\nresults: ${file}\n`);
  reportProblems();
}

/** Ids of 1,000 payouts the API's create runs made, at random. */
async function readFixtures(url: string): Promise<string[]> {
  return withPg(url, async (client) => {
    const { rows } = await client.query<{ id: string }>(
      `SELECT id FROM payouts WHERE client_id = (SELECT id FROM clients WHERE name = 'bench')
       ORDER BY random() LIMIT 1000`,
    );
    if (rows.length === 0) throw new HarnessError('no payouts to read: the create runs made none');
    return rows.map((row) => row.id);
  });
}

/** Ids of 1,000 rows the floor's create runs wrote, at random. */
async function floorFixtures(url: string): Promise<string[]> {
  return withPg(url, async (client) => {
    const { rows } = await client.query<{ id: string }>(
      'SELECT id FROM floor_payouts ORDER BY random() LIMIT 1000',
    );
    if (rows.length === 0) throw new HarnessError('no floor rows to read: the floor create runs made none');
    return rows.map((row) => row.id);
  });
}

await runMain('bench', main, { deleteTopology: true });
