/**
 * Profiles the API (or its floor) under the benchmark's load: `node --cpu-prof …` on a fresh database, warmed
 * up, loaded like `make bench` (32 connections, a fresh Idempotency-Key per create), stopped with SIGTERM (the
 * profile is written at exit), then summarised over the measured window only (bench/cpuprofile.ts), with the
 * CPU time per request: the number to compare between the service and its floor.
 *
 * The service is the API as `make run` starts it (default settings); the floors are `../shared/limits/http_floor.mjs`
 * `create1` and `read1` (reading the rows its own `create1` wrote).
 *
 * `npm run build && node --import tsx bench/profile.ts [create|read-id|read-list] [service|floor]`
 * Env: BENCH_SECONDS (15), BENCH_CONNECTIONS (32). Profiles land in bench/results/profiles/.
 */
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { printSummary, summariseFile } from './cpuprofile.js';
import type { Child, LoadSpec } from './lib.js';
import {
  apiLogFile,
  CONNECTIONS,
  cpuTimeMs,
  createLoad,
  envInt,
  fmt,
  freePort,
  HarnessError,
  LIMITS,
  load,
  peakRssMb,
  prepareServiceDatabase,
  recreateDatabase,
  RESULTS,
  runEnv,
  RUN_ARGS,
  runMain,
  start,
  stop,
  waitForHttp,
  waitForQuietMachine,
  withPg,
} from './lib.js';

const SECONDS = envInt('BENCH_SECONDS', 15);
const mode = process.argv[2] ?? 'create';
const target = process.argv[3] ?? 'service';
/** The floors have no signal handler: this preload makes SIGTERM a normal exit, so the profile is written. */
const EXIT_ON_SIGTERM = 'data:text/javascript,process.on("SIGTERM",()=>process.exit(0))';

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

async function main(): Promise<void> {
  if (!['create', 'read-id', 'read-list'].includes(mode)) throw new HarnessError(`unknown mode ${mode}`);
  if (!['service', 'floor'].includes(target)) throw new HarnessError(`unknown target ${target}`);
  const dir = join(RESULTS, 'profiles');
  mkdirSync(dir, { recursive: true });
  const { url, apiKey } = await prepareServiceDatabase('payouts_bench_profile');
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` };
  const create = createLoad(headers, SECONDS, CONNECTIONS);
  const prof = ['--cpu-prof', `--cpu-prof-dir=${dir}`];

  // Reads need rows: made by the service, whichever process is profiled.
  if (mode !== 'create') {
    const port = await freePort();
    const api = start('api', 'node', RUN_ARGS, runEnv(port, url), {
      stdoutFile: apiLogFile(),
      onlyEnv: true,
    });
    await waitForHttp(api, port);
    await load({ ...create, port, seconds: 5 });
    await stop(api);
  }
  const ids = await withPg(url, async (client) => {
    const { rows } = await client.query<{ id: string }>(
      'SELECT id FROM payouts ORDER BY random() LIMIT 1000',
    );
    return rows;
  });

  await waitForQuietMachine();
  const port = await freePort();
  const startedAt = Date.now();
  let child: Child;
  if (target === 'service') {
    child = start('api', 'node', [...prof, ...RUN_ARGS], runEnv(port, url), {
      stdoutFile: apiLogFile(),
      onlyEnv: true,
    });
  } else {
    const floorUrl = await recreateDatabase('payouts_bench_floor');
    const probe = join(LIMITS, 'http_floor.mjs');
    if (mode !== 'create') {
      // The read floor reads its own table: filled by its create first.
      const filler = start('floor', 'node', [probe, String(port), 'create1'], {
        FLOOR_DATABASE_URL: floorUrl,
      });
      await waitForHttp(filler, port);
      await load({ ...create, port, seconds: 5 });
      await stop(filler);
      ids.splice(0, ids.length, ...(await floorIds(floorUrl)));
    }
    child = start(
      'floor',
      'node',
      [...prof, '--import', EXIT_ON_SIGTERM, probe, String(port), mode === 'create' ? 'create1' : 'read1'],
      { FLOOR_DATABASE_URL: floorUrl },
    );
  }
  await waitForHttp(child, port);
  const spec: LoadSpec =
    mode === 'create'
      ? { ...create, port }
      : {
          method: 'GET',
          headers,
          port,
          seconds: SECONDS,
          connections: CONNECTIONS,
          path: mode === 'read-id' ? ids.map((row) => `/api/payouts/${row.id}`) : '/api/payouts?limit=20',
        };
  await load({ ...spec, seconds: 3 });
  const from = nowUs();
  const cpuBefore = cpuTimeMs(child.proc.pid);
  const result = await load(spec);
  const cpuMs = cpuTimeMs(child.proc.pid) - cpuBefore;
  const to = nowUs();
  const rss = peakRssMb(child.proc.pid);
  await stop(child, 20_000);
  const file = readdirSync(dir)
    .filter((name) => name.endsWith('.cpuprofile'))
    .map((name) => join(dir, name))
    .filter((path) => statSync(path).mtimeMs >= startedAt)
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (!file)
    throw new HarnessError(`no .cpuprofile written in ${dir} (did the process exit cleanly on SIGTERM?)`);
  const summary = summariseFile(file, 30, { fromUs: from, toUs: to });
  process.stdout.write(
    `${mode} on the ${target}: ${fmt(result.rps)} req/s, p50 ${fmt(result.p50)} ms, p99 ${fmt(result.p99)} ms, ` +
      `non-2xx ${result.non2xx}, peak RSS ${fmt(rss, 0)} MB (under the profiler)\n` +
      `CPU per request: ${fmt(cpuMs / Math.max(1, result.total), 3)} ms (user + system, under the profiler); ` +
      `not idle per request: ${fmt(summary.busyMs / Math.max(1, result.total), 3)} ms ` +
      `(includes time descheduled on a busy machine)\n` +
      `profile: ${file}\n`,
  );
  printSummary(summary);
}

async function floorIds(url: string): Promise<Array<{ id: string }>> {
  return withPg(url, async (client) => {
    const { rows } = await client.query<{ id: string }>(
      'SELECT id FROM floor_payouts ORDER BY random() LIMIT 1000',
    );
    return rows;
  });
}

await runMain('profile', main, { deleteTopology: true });
