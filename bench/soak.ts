/**
 * `make soak`: the service over time. The API, a relay, two workers and the sweeper run as `make run` and the
 * role commands start them; creates arrive at 70 % of the rate the service just carried from create to final (a 5 s
 * wrk run at 32 connections, after a first such run warmed the roles and was drained: its creates over the time
 * until the last of them was final; the API's own rate if that is lower), or at `SOAK_RATE` per second, open loop
 * (one request every 1/rate s, whatever the answers), for `SOAK_SECONDS` (600), while the relay and the workers
 * drain. Every interval (`SOAK_INTERVAL_SECONDS`: 60, or a sixth of a shorter run) it records the creates' p50 and
 * p99, each role's resident memory, the outbox backlog and the payouts not yet final. At the end the load stops
 * and the payouts must all finish.
 *
 * A service that has run for days prunes as many rows as it writes: published outbox rows past OUTBOX_RETENTION_HOURS
 * (the relay) and idempotency outcomes past IDEMPOTENCY_TTL_HOURS (the sweeper). A ten-minute run starts with
 * neither, so before the clock starts the soak writes that edge: as many aged rows as the run will write, timed to
 * expire at the rate the creates add new ones. Pruning that keeps up then holds both tables flat; one that falls
 * behind leaves expired rows piling up, which the table shows.
 *
 * Pass: p99 of the last interval ≤ 1.2 × the first's; every role's RSS (the median of a sample every 2 s) grows
 * < 10 % from the first interval after the warm-up (the second) to the last; the backlog does not grow (the last
 * sample ≤ the first, or ≤ one second of creates); the expired rows waiting for their pruner at the end are no more
 * than one pruning interval adds; every create 2xx; no payout unfinished at the end. Prints the per-interval table
 * (with PostgreSQL's checkpoints and autovacuum runs in each interval, the usual causes of a latency spike), a
 * one-line verdict, and writes a PNG plot of the same to bench/results/.
 *
 * `SOAK_STRICT=0` (the gate's short run) fails only on what does not depend on timing — a non-2xx answer, a payout
 * left unfinished, a backlog still there at the end — and reports the rest.
 */
import http from 'node:http';
import type * as ConfigModule from '../src/config.js';
import { join } from 'node:path';
import type { Child } from './lib.js';
import {
  CONNECTIONS,
  CREATE_BODY,
  RESULTS,
  dbUrl,
  RUN_ARGS,
  apiLogFile,
  createLoad,
  envInt,
  fmt,
  freePort,
  fromDist,
  median,
  load,
  loud,
  pipelineEnv,
  prepareServiceDatabase,
  problems,
  reportProblems,
  rssMb,
  runEnv,
  runMain,
  sleep,
  start,
  startPipelineRole,
  waitForHttp,
  withPg,
  writeResults,
} from './lib.js';
import { chartSvg, writePng } from './chart.js';

const SECONDS = envInt('SOAK_SECONDS', 600);
const INTERVAL = envInt('SOAK_INTERVAL_SECONDS', SECONDS >= 360 ? 60 : Math.max(5, Math.floor(SECONDS / 6)));
const LOAD_SHARE = 0.7;
/**
 * `SOAK_RATE`: creates per second, fixed, instead of 70 % of the maximum just measured (which moved by up to × 1.9
 * from one run to the next on this shared machine): two runs at one rate are the same load.
 */
const FIXED_RATE = process.env.SOAK_RATE ? envInt('SOAK_RATE', 1) : undefined;
const STRICT = process.env.SOAK_STRICT !== '0';
const FINISH_TIMEOUT_S = envInt('SOAK_FINISH_TIMEOUT_SECONDS', 180);

interface Sample {
  t: number;
  sent: number;
  answered: number;
  rps: number;
  p50: number;
  p99: number;
  rssMb: Record<string, number>;
  backlog: number;
  unfinished: number;
  tables: Tables;
  /** PostgreSQL's checkpoints and autovacuum/autoanalyze runs during the interval. */
  checkpoints: number;
  autovacuums: number;
}

/** The rows the pruners keep bounded: all of them, and those past their retention still waiting. */
interface Tables {
  outbox: number;
  outboxExpired: number;
  outcomes: number;
  outcomesExpired: number;
}

/** The relay prunes once a minute, the sweeper every SWEEP_INTERVAL_MS (30 s by default). */
const OUTBOX_PRUNE_INTERVAL_S = 60;
const OUTCOME_PRUNE_INTERVAL_S = 30;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Resident memory of each role, sampled every 2 s; `take()` gives each role's median since the last call. */
class RssSampler {
  private readonly samples = new Map<string, number[]>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly roles: Record<string, Child>) {
    this.timer = setInterval(() => {
      for (const [name, child] of Object.entries(this.roles)) {
        const list = this.samples.get(name) ?? [];
        list.push(rssMb(child.proc.pid));
        this.samples.set(name, list);
      }
    }, 2_000);
  }

  take(): Record<string, number> {
    const medians = Object.fromEntries(
      Object.entries(this.roles).map(([name, child]) => {
        const list = this.samples.get(name) ?? [];
        return [name, list.length > 0 ? median(list) : rssMb(child.proc.pid)];
      }),
    );
    this.samples.clear();
    return medians;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Open-loop creates at `rate` per second: latencies of the answers, by the interval they were sent in. */
class OpenLoop {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  private timer: NodeJS.Timeout | undefined;
  private sequence = 0;
  latencies: number[] = [];
  sent = 0;
  answered = 0;
  failed = 0;
  inFlight = 0;

  constructor(
    private readonly port: number,
    private readonly apiKey: string,
    private readonly rate: number,
  ) {}

  start(): void {
    const started = performance.now();
    const tick = () => {
      // Every request due by now is sent: the schedule does not slow down when answers do.
      const due = Math.floor(((performance.now() - started) / 1000) * this.rate);
      while (this.sent < due) this.send();
      this.timer = setTimeout(tick, 2);
    };
    tick();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }

  /** The latencies since the last call, sorted. */
  take(): number[] {
    const taken = this.latencies.sort((a, b) => a - b);
    this.latencies = [];
    return taken;
  }

  private send(): void {
    this.sent += 1;
    this.inFlight += 1;
    this.sequence += 1;
    const sentAt = performance.now();
    const request = http.request(
      {
        host: '127.0.0.1',
        port: this.port,
        method: 'POST',
        path: '/api/payouts',
        agent: this.agent,
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${this.apiKey}`,
          'idempotency-key': `soak-${process.pid}-${this.sequence}`,
        },
      },
      (response) => {
        response.resume();
        response.on('end', () => {
          this.inFlight -= 1;
          this.answered += 1;
          if (response.statusCode !== 201) this.failed += 1;
          this.latencies.push(performance.now() - sentAt);
        });
      },
    );
    request.on('error', () => {
      this.inFlight -= 1;
      this.failed += 1;
    });
    request.end(CREATE_BODY);
  }

  close(): void {
    this.agent.destroy();
  }
}

async function state(url: string): Promise<{ backlog: number; unfinished: number }> {
  return withPg(url, async (client) => {
    const { rows } = await client.query<{ backlog: string; unfinished: string }>(
      `SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS backlog,
              (SELECT count(*) FROM payouts WHERE status IN ('created', 'processing')) AS unfinished`,
    );
    return { backlog: Number(rows[0]!.backlog), unfinished: Number(rows[0]!.unfinished) };
  });
}

/** Waits until no payout is unfinished (at most `FINISH_TIMEOUT_S`), looking every `pollMs`. */
async function drained(url: string, pollMs = 1000): Promise<void> {
  const deadline = performance.now() + FINISH_TIMEOUT_S * 1000;
  while ((await state(url)).unfinished > 0 && performance.now() < deadline) await sleep(pollMs);
}

/** What one interval records of the database, in one statement: the backlog, the pruned tables, the counters. */
interface DatabaseSample {
  backlog: number;
  unfinished: number;
  tables: Tables;
  /** PostgreSQL's checkpoints so far, and the autovacuum and autoanalyze runs on the service's tables. */
  checkpoints: number;
  autovacuums: number;
}

async function sampleDatabase(url: string, retention: Retention): Promise<DatabaseSample> {
  return withPg(url, async (client) => {
    const { rows } = await client.query<Record<string, string>>(
      `SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS backlog,
              (SELECT count(*) FROM payouts WHERE status IN ('created', 'processing')) AS unfinished,
              (SELECT count(*) FROM outbox) AS outbox,
              (SELECT count(*) FROM outbox WHERE published_at < now() - make_interval(hours => $1)) AS "outboxExpired",
              (SELECT count(*) FROM idempotency_keys) AS outcomes,
              (SELECT count(*) FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $2))
                AS "outcomesExpired",
              (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter) AS checkpoints,
              (SELECT sum(autovacuum_count + autoanalyze_count) FROM pg_stat_user_tables) AS autovacuums`,
      [retention.outboxHours, retention.outcomeHours],
    );
    const n = (name: string) => Number(rows[0]![name]);
    return {
      backlog: n('backlog'),
      unfinished: n('unfinished'),
      tables: {
        outbox: n('outbox'),
        outboxExpired: n('outboxExpired'),
        outcomes: n('outcomes'),
        outcomesExpired: n('outcomesExpired'),
      },
      checkpoints: n('checkpoints'),
      autovacuums: n('autovacuums'),
    };
  });
}

interface Retention {
  outboxHours: number;
  outcomeHours: number;
}

/**
 * The state of a service that has run longer than its retentions: `outboxPerSecond` published outbox rows and
 * `outcomesPerSecond` idempotency outcomes written `seconds` before their retention ends, one batch of them
 * expiring every moment of the run, as fast as the creates add new ones. The outcomes answer one payout of the
 * soak's client (their keys are never sent).
 */
async function seedRetentionEdge(
  url: string,
  retention: Retention,
  seconds: number,
  outboxPerSecond: number,
  outcomesPerSecond: number,
): Promise<void> {
  await withPg(url, async (client) => {
    await client.query(
      `INSERT INTO outbox (id, topic, payload, created_at, published_at)
       SELECT gen_random_uuid(), 'soak.aged', '{}'::jsonb, at, at
         FROM (SELECT now() - make_interval(hours => $1) + make_interval(secs => $2::float8 * n / $3) AS at
                 FROM generate_series(1, $3::int) n) aged`,
      [retention.outboxHours, seconds, Math.round(outboxPerSecond * seconds)],
    );
    await client.query(
      `INSERT INTO idempotency_keys (client_id, key, request_hash, payout_id, response_status, response_body, created_at)
       SELECT payout.client_id, 'soak-aged-' || n, 'aged', payout.id, 201, '{}'::json,
              now() - make_interval(hours => $1) + make_interval(secs => $2::float8 * n / $3)
         FROM generate_series(1, $3::int) n, (SELECT id, client_id FROM payouts LIMIT 1) payout`,
      [retention.outcomeHours, seconds, Math.round(outcomesPerSecond * seconds)],
    );
    await client.query('VACUUM ANALYZE outbox, idempotency_keys');
  });
}

/** Rows each create adds to the outbox and to the idempotency outcomes, from what the maximum run left. */
async function rowsPerCreate(url: string): Promise<{ outbox: number; outcomes: number }> {
  return withPg(url, async (client) => {
    const { rows } = await client.query<{ payouts: string; outbox: string; outcomes: string }>(
      `SELECT (SELECT count(*) FROM payouts) AS payouts, (SELECT count(*) FROM outbox) AS outbox,
              (SELECT count(*) FROM idempotency_keys) AS outcomes`,
    );
    const payouts = Math.max(1, Number(rows[0]!.payouts));
    return { outbox: Number(rows[0]!.outbox) / payouts, outcomes: Number(rows[0]!.outcomes) / payouts };
  });
}

/**
 * The outbox, the payouts and the outcomes churn (updates, pruning): without autovacuum their dead rows pile up
 * through the run, which a production server (autovacuum on unless turned off) does not show. A server that runs
 * without it (this machine's CI settings turn it off) has it turned on for the run with `ALTER SYSTEM`, and set back
 * as it was at the end, also when the run fails (a run stopped with Ctrl-C leaves it on: `ALTER SYSTEM RESET
 * autovacuum` and a reload set it back). `SOAK_AUTOVACUUM=keep` leaves the server's setting alone.
 */
async function autovacuumForTheRun(): Promise<() => Promise<void>> {
  const admin = dbUrl('postgres');
  const before = await withPg(admin, async (client) => {
    const { rows } = await client.query<{ setting: string; sourcefile: string | null }>(
      "SELECT setting, sourcefile FROM pg_settings WHERE name = 'autovacuum'",
    );
    return rows[0];
  });
  if (before === undefined || before.setting === 'on') return () => Promise.resolve();
  const leftOff = `PostgreSQL runs with autovacuum = ${before.setting}: dead rows accumulate through the run`;
  if (process.env.SOAK_AUTOVACUUM === 'keep') {
    process.stdout.write(`${leftOff}\n`);
    return () => Promise.resolve();
  }
  try {
    await withPg(admin, async (client) => {
      await client.query('ALTER SYSTEM SET autovacuum = on');
      await client.query('SELECT pg_reload_conf()');
    });
  } catch (error) {
    // Only a superuser may change the server's settings (42501: insufficient privilege).
    if ((error as { code?: unknown }).code !== '42501') throw error;
    process.stdout.write(`${leftOff} (not a superuser: it could not be turned on)\n`);
    return () => Promise.resolve();
  }
  process.stdout.write('autovacuum turned on for the run (ALTER SYSTEM; set back at the end)\n');
  // Set with ALTER SYSTEM before: that value again; otherwise the configuration files' own, by removing ours.
  const restore = before.sourcefile?.endsWith('postgresql.auto.conf')
    ? `ALTER SYSTEM SET autovacuum = ${before.setting === 'on' ? 'on' : 'off'}`
    : 'ALTER SYSTEM RESET autovacuum';
  return () =>
    withPg(admin, async (client) => {
      await client.query(restore);
      await client.query('SELECT pg_reload_conf()');
    });
}

async function main(): Promise<void> {
  const restoreAutovacuum = await autovacuumForTheRun();
  try {
    await soak();
  } finally {
    await restoreAutovacuum();
  }
}

async function soak(): Promise<void> {
  const { url, apiKey } = await prepareServiceDatabase('payouts_bench_soak');
  const apiPort = await freePort();
  const api = start('api', 'node', RUN_ARGS, runEnv(apiPort, url), {
    stdoutFile: apiLogFile(),
    onlyEnv: true,
  });
  await waitForHttp(api, apiPort);
  const roles: Record<string, Child> = { api };
  for (const [name, role] of [
    ['relay', 'relay'],
    ['worker 1', 'worker'],
    ['worker 2', 'worker'],
    ['sweeper', 'sweeper'],
  ] as const)
    roles[name] = await startPipelineRole(name, role, url);

  const headers = { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` };
  // The maximum of roles just started is their cold start's (JIT, pools, first statements): 164 creates/s where the
  // same build reached 274–288 once warm. A first run warms them, and what it left is drained before the one that
  // is measured.
  await load({ ...createLoad(headers, 5, CONNECTIONS), port: apiPort });
  await drained(url);
  // The maximum is what the service carries from create to final, not what the API alone takes: on two cores the API
  // took creates faster than the relay and workers beside it paid them out, and 70 % of the API's own rate piled up
  // unfinished payouts for the whole run (bench/README.md, "Over time, at what the service sustains").
  const measuredFrom = performance.now();
  const max = await load({ ...createLoad(headers, 5, CONNECTIONS), port: apiPort });
  await drained(url, 200);
  const finishedAfter = (performance.now() - measuredFrom) / 1000;
  const carried = max.ok / finishedAfter;
  const maximum = Math.min(max.rps, carried);
  const rate = FIXED_RATE ?? Math.max(1, Math.round(maximum * LOAD_SHARE));
  const share =
    FIXED_RATE === undefined ? `${LOAD_SHARE * 100} %` : `SOAK_RATE: ${fmt((rate / maximum) * 100, 0)} %`;
  process.stdout.write(
    `make soak: ${SECONDS} s at ${rate} creates/s (${share} of the ${fmt(maximum)} payouts/s the service just carried ` +
      `from create to final: the API took ${fmt(max.rps)} creates/s for 5 s, the last was final ${fmt(finishedAfter)} s ` +
      `after the first was sent), relay + 2 workers + sweeper draining; a sample every ${INTERVAL} s` +
      `${STRICT ? '' : ' (SOAK_STRICT=0)'}\n`,
  );
  const { loadConfig } = await fromDist<typeof ConfigModule>('src/config.ts');
  const config = loadConfig(pipelineEnv(url));
  const retention = { outboxHours: config.outboxRetentionHours, outcomeHours: config.idempotencyTtlHours };
  const perCreate = await rowsPerCreate(url);
  await seedRetentionEdge(url, retention, SECONDS, rate * perCreate.outbox, rate * perCreate.outcomes);
  process.stdout.write(
    `retention edge: ${fmt(rate * perCreate.outbox * SECONDS, 0)} outbox rows and ${fmt(rate * perCreate.outcomes * SECONDS, 0)} ` +
      `idempotency outcomes expiring over the run (${fmt(perCreate.outbox, 2)} and ${fmt(perCreate.outcomes, 2)} per create)\n`,
  );

  const names = Object.keys(roles);
  process.stdout.write(
    `\n${'t (s)'.padStart(6)} ${'creates/s'.padStart(9)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)}  ` +
      `${names.map((name) => `${name} MB`.padStart(12)).join(' ')} ${'backlog'.padStart(8)} ${'unfinished'.padStart(10)} ` +
      `${'outbox'.padStart(8)} ${'expired'.padStart(8)} ${'outcomes'.padStart(9)} ${'expired'.padStart(8)} ` +
      `${'ckpt'.padStart(5)} ${'autovac'.padStart(8)}\n`,
  );
  const loop = new OpenLoop(apiPort, apiKey, rate);
  const rss = new RssSampler(roles);
  const samples: Sample[] = [];
  let counters = await sampleDatabase(url, retention);
  const started = performance.now();
  loop.start();
  let lastAnswered = 0;
  try {
    for (let t = INTERVAL; t <= SECONDS; t += INTERVAL) {
      await sleep(started + t * 1000 - performance.now());
      const latencies = loop.take();
      const counted = await sampleDatabase(url, retention);
      const sample: Sample = {
        t,
        sent: loop.sent,
        answered: loop.answered,
        rps: (loop.answered - lastAnswered) / INTERVAL,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        rssMb: rss.take(),
        backlog: counted.backlog,
        unfinished: counted.unfinished,
        tables: counted.tables,
        checkpoints: counted.checkpoints - counters.checkpoints,
        autovacuums: counted.autovacuums - counters.autovacuums,
      };
      counters = counted;
      lastAnswered = loop.answered;
      samples.push(sample);
      process.stdout.write(
        `${String(t).padStart(6)} ${fmt(sample.rps).padStart(9)} ${fmt(sample.p50).padStart(7)} ${fmt(sample.p99).padStart(7)}  ` +
          `${names.map((name) => fmt(sample.rssMb[name]!, 0).padStart(12)).join(' ')} ${String(sample.backlog).padStart(8)} ` +
          `${String(sample.unfinished).padStart(10)} ${String(sample.tables.outbox).padStart(8)} ` +
          `${String(sample.tables.outboxExpired).padStart(8)} ${String(sample.tables.outcomes).padStart(9)} ` +
          `${String(sample.tables.outcomesExpired).padStart(8)} ${String(sample.checkpoints).padStart(5)} ` +
          `${String(sample.autovacuums).padStart(8)}\n`,
      );
    }
  } finally {
    loop.stop();
    rss.stop();
  }
  for (let waited = 0; loop.inFlight > 0 && waited < 30; waited += 1) await sleep(1000);
  loop.close();
  let end = await state(url);
  for (let waited = 0; end.unfinished + end.backlog > 0 && waited < FINISH_TIMEOUT_S; waited += 1) {
    await sleep(1000);
    end = await state(url);
  }

  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  // The first interval is the warm-up of memory (V8's heaps grow to their working size); the second is the baseline.
  const warm = samples[Math.min(1, samples.length - 1)]!;
  const p99Growth = last.p99 / first.p99;
  const rssGrowth = Object.fromEntries(
    names.map((name) => [name, last.rssMb[name]! / warm.rssMb[name]! - 1]),
  );
  const worstRss = Math.max(...Object.values(rssGrowth));
  const backlogFlat = last.backlog <= Math.max(first.backlog, rate);
  // Expired rows still there at the end: no more than one pruning interval's worth (and a tenth for the timing).
  const prunedOutbox = last.tables.outboxExpired <= 1.1 * rate * perCreate.outbox * OUTBOX_PRUNE_INTERVAL_S;
  const prunedOutcomes =
    last.tables.outcomesExpired <= 1.1 * rate * perCreate.outcomes * OUTCOME_PRUNE_INTERVAL_S;
  const checks = {
    p99: p99Growth <= 1.2,
    rss: worstRss < 0.1,
    backlog: backlogFlat,
    pruning: prunedOutbox && prunedOutcomes,
    answers: loop.failed === 0,
    finished: end.unfinished === 0 && end.backlog === 0,
  };
  const timingOk = checks.p99 && checks.rss && checks.backlog && checks.pruning;
  const pass = checks.answers && checks.finished && (timingOk || !STRICT);
  process.stdout.write(
    `\nsoak: ${pass ? 'PASS' : 'FAIL'} — p99 last/first × ${fmt(p99Growth, 2)} (≤ 1.2 ${checks.p99 ? 'ok' : 'MISSED'}), ` +
      `RSS growth at most ${fmt(worstRss * 100, 1)} % (< 10 % ${checks.rss ? 'ok' : 'MISSED'}), backlog ${first.backlog} → ` +
      `${last.backlog} (${checks.backlog ? 'flat' : 'GROWING'}), expired rows waiting at the end: outbox ` +
      `${last.tables.outboxExpired}, outcomes ${last.tables.outcomesExpired} (${checks.pruning ? 'pruning keeps up' : 'PRUNING BEHIND'}), ` +
      `${loop.sent} creates, ${loop.failed} not 201, ` +
      `${end.unfinished} unfinished and ${end.backlog} unsent at the end\n`,
  );
  if (!checks.answers) loud(`${loop.failed} creates were not answered 201`);
  if (!checks.finished)
    loud(`${end.unfinished} payouts unfinished, ${end.backlog} messages unsent at the end`);
  if (STRICT && !timingOk) loud('the service drifted: see the verdict');

  const times = samples.map((sample) => sample.t);
  const plot = join(RESULTS, `soak-${new Date().toISOString().replace(/[:.]/g, '-')}.png`);
  await writePng(
    chartSvg(`make soak: ${rate} creates/s for ${SECONDS} s`, times, [
      {
        title: 'create latency',
        unit: 'ms',
        series: [
          { name: 'p50', values: samples.map((sample) => sample.p50) },
          { name: 'p99', values: samples.map((sample) => sample.p99) },
        ],
      },
      {
        title: 'resident memory per role',
        unit: 'MB',
        series: names.map((name) => ({ name, values: samples.map((sample) => sample.rssMb[name]!) })),
      },
      {
        title: 'rows past their retention, waiting for the pruners',
        unit: '',
        series: [
          { name: 'outbox', values: samples.map((sample) => sample.tables.outboxExpired) },
          { name: 'idempotency outcomes', values: samples.map((sample) => sample.tables.outcomesExpired) },
        ],
      },
      {
        title: 'outbox backlog and unfinished payouts',
        unit: '',
        series: [
          { name: 'backlog', values: samples.map((sample) => sample.backlog) },
          { name: 'unfinished', values: samples.map((sample) => sample.unfinished) },
        ],
      },
    ]),
    plot,
  );
  const file = writeResults('soak', {
    rate,
    fixedRate: FIXED_RATE !== undefined,
    maxRps: max.rps,
    carriedPerSecond: carried,
    seconds: SECONDS,
    interval: INTERVAL,
    samples,
    checks,
    pass,
    problems,
  });
  process.stdout.write(`plot: ${plot}\nresults: ${file}\n`);
  reportProblems();
}

await runMain('soak', main, { deleteTopology: true });
