/**
 * The measurements of `make bench` and `make bench-scale`: creates, then reads, each loaded by wrk against its
 * floor (`../shared/limits/http_floor.mjs` `create1`, `read1`, `list1`), floor and service alternating, the API
 * started exactly as `make run` starts it. Prints every run, the medians and the ratios next to their targets.
 *
 * Env: BENCH_SECONDS (8) per run, BENCH_WARMUP_SECONDS (2), BENCH_ROUNDS (2), BENCH_CONNECTIONS (32), BENCH_READS
 * (1; 0 skips the reads), BENCH_SELF_TEST (1: the floor plays the service too, an A/A check of the harness).
 */
import { join } from 'node:path';
import type { Child, LoadResult, LoadSpec } from './lib.js';
import { CONNECTIONS, HarnessError, LIMITS, RUN_ARGS } from './lib.js';
import {
  apiLogFile,
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
  runEnv,
  sleep,
  start,
  stop,
  verdict,
  waitForHttp,
  waitForQuietMachine,
  withPg,
} from './lib.js';

export const SECONDS = envInt('BENCH_SECONDS', 8);
export const WARMUP = envInt('BENCH_WARMUP_SECONDS', 2, 0);
export const ROUNDS = envInt('BENCH_ROUNDS', 2);
export const READS = process.env.BENCH_READS !== '0';
export const SELF_TEST = process.env.BENCH_SELF_TEST === '1';

/** Create: ≥ 0.6 of the limit's throughput, p99 ≤ 1.5 × its p99; reads ≥ 0.7 of theirs; API RSS ≤ 150 MB. */
export const TARGETS: Record<string, { throughput: number; p99: number }> = {
  create: { throughput: 0.6, p99: 1.5 },
  'read:id': { throughput: 0.7, p99: Infinity },
  'read:list': { throughput: 0.7, p99: Infinity },
};
export const RSS_TARGET_MB = 150;

export interface Target {
  name: 'floor' | 'service';
  start(port: number): Child;
  /** SQL counting the rows a create writes, to prove every 2xx made a new payout (no replays). */
  rowsSql: string;
}

export interface Run {
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

/** A load of a suite, named by its kind (`create`, `read:id`, `read:list`, …). */
export type KindedSpec = Omit<LoadSpec, 'port'> & { kind: string };

async function bench(
  runs: Run[],
  kind: string,
  round: number,
  target: Target,
  specs: KindedSpec[],
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
    for (const spec of specs) {
      const before = kind === 'create' ? await count(url, target.rowsSql) : 0;
      const cpuBefore = cpuTimeMs(child.proc.pid);
      const result = await load({ ...spec, port });
      const cpuMs = cpuTimeMs(child.proc.pid) - cpuBefore;
      await sleep(200);
      const rowsCreated = kind === 'create' ? (await count(url, target.rowsSql)) - before : undefined;
      const entry: Run = {
        kind: spec.kind,
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

function summarise(runs: Run[], kind: string): Record<string, number> {
  // A further read has the reads' target.
  const target = TARGETS[kind] ?? { throughput: 0.7, p99: Infinity };
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

export interface SuiteOptions {
  serviceUrl: string;
  floorUrl: string;
  apiKey: string;
  /** The client whose payouts the reads read: the key's, or `readKey`'s when given. */
  clientName: string;
  /** The key of the reads, when they read another client than the creates write. */
  readKey?: string;
  /** Further reads of the service, each against the floor's `read1` (`:id`-like) or `list1` (list-like). */
  extraReads?: Array<{ kind: string; floor: 'read1' | 'list1'; path: (ids: string[]) => string | string[] }>;
}

export interface SuiteResult {
  summary: Record<string, Record<string, number>>;
  runs: Run[];
}

/** Creates, then (unless BENCH_READS=0) reads, each kind against its floor, `ROUNDS` alternations. */
export async function runSuite(options: SuiteOptions): Promise<SuiteResult> {
  const { serviceUrl, floorUrl, apiKey } = options;
  const runs: Run[] = [];
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` };
  const floorProbe = join(LIMITS, 'http_floor.mjs');
  const floorIn = (mode: string): Target => ({
    name: 'floor',
    start: (port) =>
      start(`floor ${mode}`, 'node', [floorProbe, String(port), mode], { FLOOR_DATABASE_URL: floorUrl }),
    rowsSql: 'SELECT count(*) AS n FROM floor_payouts',
  });
  const floor = floorIn('create1');
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
  const createSpec: KindedSpec = { ...createLoad(headers, SECONDS, CONNECTIONS), kind: 'create' };

  process.stdout.write('\ncreate: POST /api/payouts, a fresh Idempotency-Key on every request\n');
  for (let round = 1; round <= ROUNDS; round += 1) {
    await bench(runs, 'create', round, floor, [createSpec], floorUrl);
    await bench(runs, 'create', round, service, [createSpec], SELF_TEST ? floorUrl : serviceUrl);
  }
  const summary: Record<string, Record<string, number>> = { create: summarise(runs, 'create') };
  if (!READS) return { summary, runs };

  // The statistics autovacuum would have gathered after the creates (this machine's PostgreSQL may run without it):
  // a filtered page planned on a table never analyzed can read all of a client's payouts and sort them.
  for (const url of new Set([floorUrl, serviceUrl])) await withPg(url, (client) => client.query('ANALYZE'));
  // Each reads what its own create runs wrote: the floor its table, the API the payouts of the bench's client.
  const floorIds = await floorFixtures(floorUrl);
  const serviceIds = SELF_TEST ? floorIds : await readFixtures(serviceUrl, options.clientName);
  const readHeaders = { ...headers, authorization: `Bearer ${options.readKey ?? apiKey}` };
  const base = { method: 'GET' as const, headers: readHeaders, seconds: SECONDS, connections: CONNECTIONS };
  const reads: Array<{
    kind: string;
    floor: 'read1' | 'list1';
    floorPath: string | string[];
    path: string | string[];
  }> = [
    {
      kind: 'read:id',
      floor: 'read1',
      floorPath: floorIds.map((id) => `/api/payouts/${id}`),
      path: serviceIds.map((id) => `/api/payouts/${id}`),
    },
    { kind: 'read:list', floor: 'list1', floorPath: '/api/payouts?limit=20', path: '/api/payouts?limit=20' },
    ...(options.extraReads ?? []).map((read) => ({
      kind: read.kind,
      floor: read.floor,
      floorPath:
        read.floor === 'read1' ? floorIds.map((id) => `/api/payouts/${id}`) : '/api/payouts?limit=20',
      path: read.path(serviceIds),
    })),
  ];
  process.stdout.write(
    `\nreads: ${reads.map((read) => read.kind).join(', ')} (${serviceIds.length} ids at random)\n`,
  );
  // The floor answers `read1` and `list1` from one process; the service every read.
  for (let round = 1; round <= ROUNDS; round += 1) {
    for (const mode of ['read1', 'list1'] as const) {
      const specs = reads
        .filter((read) => read.floor === mode)
        .map((read) => ({ ...base, kind: read.kind, path: read.floorPath }));
      await bench(runs, 'read', round, floorIn(mode), specs, floorUrl);
    }
    const specs = reads.map((read) => ({ ...base, kind: read.kind, path: read.path }));
    await bench(
      runs,
      'read',
      round,
      SELF_TEST ? { ...floorIn('read1'), name: 'service' } : { ...service, rowsSql: '' },
      specs,
      serviceUrl,
    );
  }
  for (const read of reads) summary[read.kind] = summarise(runs, read.kind);
  return { summary, runs };
}

/** Ids of 1,000 payouts of the client at random, none deleted (the API answers 404 to those). */
async function readFixtures(url: string, clientName: string): Promise<string[]> {
  return withPg(url, async (client) => {
    const { rows } = await client.query<{ id: string }>(
      `SELECT id FROM payouts WHERE client_id = (SELECT id FROM clients WHERE name = $1) AND deleted_at IS NULL
       ORDER BY random() LIMIT 1000`,
      [clientName],
    );
    if (rows.length === 0) throw new HarnessError('no payouts to read: the create runs made none');
    return rows.map((row) => row.id);
  });
}

/** Ids of 1,000 rows of the floor's table, at random. */
async function floorFixtures(url: string): Promise<string[]> {
  return withPg(url, async (client) => {
    const { rows } = await client.query<{ id: string }>(
      'SELECT id FROM floor_payouts ORDER BY random() LIMIT 1000',
    );
    if (rows.length === 0) throw new HarnessError('no floor rows to read: the floor create runs made none');
    return rows.map((row) => row.id);
  });
}
