/**
 * `make bench`: the API against the floor, alternating, in one run.
 *
 * Create: `../shared/limits/http_floor.mjs PORT create` and `node dist/src/main.js api`, each loaded by
 * autocannon with the same valid body, the same connections and duration, a fresh `Idempotency-Key` on every
 * request. Reads: `GET /api/payouts/{id}` and `GET /api/payouts?limit=20` against `bench/read_floor.mjs`.
 * Prints every run, the medians, the ratios next to their targets, non-2xx counts and the API's peak RSS.
 *
 * Env: BENCH_SECONDS (10) per run, BENCH_WARMUP_SECONDS (2), BENCH_ROUNDS (2), BENCH_CONNECTIONS (32),
 * BENCH_POOL_MAX (20: the floor's pool size, given to the service as DATABASE_POOL_MAX), BENCH_READS (1; 0
 * skips the reads), BENCH_SELF_TEST (1: the floor plays the service too, an A/A check of the harness).
 * Exits non-zero on a harness error or any non-2xx response; a missed target is reported, not a failure.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Child, LoadResult, LoadSpec } from './lib.js';
/** The harness's settings and types. */
import { API_ARGS, CONNECTIONS, HarnessError, LIMITS, MAIN, POOL_MAX } from './lib.js';
/** The harness's steps. */
import {
  apiEnv,
  compileFloor,
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

const SECONDS = envInt('BENCH_SECONDS', 10);
const WARMUP = envInt('BENCH_WARMUP_SECONDS', 2, 0);
const ROUNDS = envInt('BENCH_ROUNDS', 2);
const READS = process.env.BENCH_READS !== '0';
const SELF_TEST = process.env.BENCH_SELF_TEST === '1';

const TARGET = { throughput: 0.6, p99: 2, rssMb: 150 };

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
        `${result.ok} 2xx; statuses ${JSON.stringify(result.statuses)}`,
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

function summarise(kind: string): Record<string, number> {
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
      `  throughput service/floor = ${fmt(throughput, 2)}   target ≥ ${TARGET.throughput}   ${verdict(throughput >= TARGET.throughput)}\n` +
      `  p99        service/floor = ${fmt(p99, 2)}   target ≤ ${TARGET.p99}     ${verdict(p99 <= TARGET.p99)}\n` +
      `  API peak RSS (VmHWM)     = ${fmt(rss, 0)} MB   target ≤ ${TARGET.rssMb} MB ${verdict(rss <= TARGET.rssMb)}\n`,
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
  if (!existsSync(MAIN)) throw new HarnessError(`${MAIN} is missing: run \`make bench\` (it builds first)`);
  process.stdout.write(
    `make bench: ${ROUNDS} rounds × ${SECONDS} s (+${WARMUP} s warm-up) at ${CONNECTIONS} connections, ` +
      `pool ${POOL_MAX}${SELF_TEST ? ', SELF TEST (floor vs floor)' : ''}\n`,
  );

  const { url: serviceUrl, apiKey } = await prepareServiceDatabase('payouts_bench');
  const floorUrl = await recreateDatabase('payouts_bench_floor');
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` };

  const floorProbe = join(LIMITS, 'http_floor.mjs');
  const floor: Target = {
    name: 'floor',
    start: (port) =>
      start('floor', 'node', [floorProbe, String(port), 'create'], { FLOOR_DATABASE_URL: floorUrl }),
    rowsSql: 'SELECT count(*) AS n FROM floor_payouts',
  };
  const service: Target = SELF_TEST
    ? { ...floor, name: 'service' }
    : {
        name: 'service',
        start: (port) => start('api', 'node', API_ARGS, apiEnv(port, serviceUrl)),
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
    const { ids, clientId } = await readFixtures(serviceUrl);
    const readFloor = compileFloor('read_floor.ts');
    const pick = () => `/api/payouts/${ids[Math.floor(Math.random() * ids.length)]!}`;
    const readFloorTarget: Target = {
      name: 'floor',
      start: (port) =>
        start('read floor', 'node', [readFloor.script, String(port)], {
          ...readFloor.env,
          FLOOR_DATABASE_URL: serviceUrl,
          FLOOR_CLIENT_ID: clientId,
        }),
      rowsSql: '',
    };
    const readService: Target = SELF_TEST
      ? { ...readFloorTarget, name: 'service' }
      : { ...service, rowsSql: '' };
    const base = { method: 'GET' as const, headers, seconds: SECONDS, connections: CONNECTIONS };
    const readSpecs = [
      { ...base, path: pick },
      { ...base, path: '/api/payouts?limit=20' },
    ];
    process.stdout.write(
      `\nreads: GET /api/payouts/{id} (${ids.length} ids at random) and GET /api/payouts?limit=20\n`,
    );
    for (let round = 1; round <= ROUNDS; round += 1) {
      await bench('read', round, readFloorTarget, readSpecs, serviceUrl);
      await bench('read', round, readService, readSpecs, serviceUrl);
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
      poolMax: POOL_MAX,
    },
    targets: TARGET,
    summary,
    runs,
    problems,
  });
  process.stdout.write(`\nresults: ${file}\n`);
  reportProblems();
}

/** Ids of the payouts the create runs made (the self test, which made none, seeds some with SQL). */
async function readFixtures(url: string): Promise<{ ids: string[]; clientId: string }> {
  return withPg(url, async (client) => {
    if (SELF_TEST) {
      await client.query(`INSERT INTO payouts (id, client_id, amount_minor, currency, recipient, status, snapshot,
          machine_version)
        SELECT gen_random_uuid(), (SELECT id FROM clients WHERE name = 'bench'), 1234, 'EUR',
          '{"type":"iban","iban":"DE89370400440532013000","bic":null,"holder_name":"Jane Doe"}', 'created',
          '{"value":"created","status":"active","context":{}}', 1
        FROM generate_series(1, 5000)`);
    }
    const { rows } = await client.query<{ id: string; client_id: string }>(
      `SELECT id, client_id FROM payouts WHERE client_id = (SELECT id FROM clients WHERE name = 'bench')
       ORDER BY random() LIMIT 1000`,
    );
    if (rows.length === 0) throw new HarnessError('no payouts to read: the create runs made none');
    return { ids: rows.map((row) => row.id), clientId: rows[0]!.client_id };
  });
}

await runMain('bench', main, { deleteTopology: true });
