/**
 * `make bench-drain`: the end-to-end drain rate against PostgreSQL's transition floor, in one run.
 *
 * 1. A dedicated database (payouts_bench_drain) and AMQP namespace (never dev data or queues). K workers and one
 *    relay are started from dist/ with PROVIDER_DELAY_MS=0 and waited for (/readyz); they run for every round.
 * 2. A round: the relay is paused (SIGSTOP) while payouts are created through the payout service in-process (with
 *    lanes in parallel), so their outbox rows wait as one backlog; it is sent a NOTIFY (as the API's creates
 *    send one) and resumed, and the clock starts. The database is polled (on one connection) until every payout
 *    is final (completed, failed or cancelled); the round lasts, by the database's clock, until the last final
 *    transition.
 * 3. The warm-up round (W payouts, the processes fresh: its rate is printed, not compared), then R measured rounds
 *    (N payouts each, on processes that have run W, as a running service's have), each just after its own
 *    `../shared/limits/pg_floor.sh` (create and transition tps; the pipeline idle meanwhile): floor and drain
 *    alternate, as `make bench`'s rounds do.
 * 4. Prints each round's drain rate against its floor (transition tps ÷ 2: a payout makes two transitions, START and
 *    SUCCEED) and the ratio of the means (target ≥ 0.8), each worker's peak RSS (≤ 150 MB), and for context
 *    `../shared/limits/amqp_floor.mjs` (messages/s).
 *
 * Env: BENCH_PAYOUTS (10000), BENCH_DRAIN_ROUNDS (2), BENCH_WARMUP_PAYOUTS (10000; 0: the first measured round
 * runs on fresh processes), BENCH_WORKERS (2), BENCH_WORKER_CONCURRENCY (the service's default when unset),
 * BENCH_CREATE_LANES (16), BENCH_DRAIN_TIMEOUT_SECONDS (600), BENCH_PG_SECONDS (10), BENCH_PG_CLIENTS (16),
 * BENCH_AMQP_MESSAGES (20000), BENCH_AMQP_PREFETCH (50), BENCH_PROFILE (1: profile the workers and the relay).
 * Exits non-zero on a harness error, a drain that does not finish, or a payout that did not complete.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type * as ConfigModule from '../src/config.js';
import type * as PartsModule from '../src/roles/parts.js';
import type * as ClientsModule from '../src/persistence/client-repository.js';
import type * as OutboxModule from '../src/persistence/outbox-repository.js';
import type * as MetricsModule from '../src/metrics.js';
import type * as ResourcesModule from '../src/http/resources.js';
import type * as ApiKeysModule from '../src/domain/api-keys.js';
import type * as LoggerModule from '../src/logger.js';
import type { Principal } from '../src/domain/principal.js';
import { printSummary, summariseFile } from './cpuprofile.js';
import type { Child } from './lib.js';
/** The harness's settings and types. */
import { CREATE_INPUT, HarnessError, LIMITS, MAIN, RESULTS } from './lib.js';
/** The harness's steps. */
import * as harness from './lib.js';

const PAYOUTS = harness.envInt('BENCH_PAYOUTS', 10_000);
const ROUNDS = harness.envInt('BENCH_DRAIN_ROUNDS', 2);
const WARMUP_PAYOUTS = harness.envInt('BENCH_WARMUP_PAYOUTS', 10_000);
const WORKERS = harness.envInt('BENCH_WORKERS', 2);
const WORKER_CONCURRENCY = process.env.BENCH_WORKER_CONCURRENCY;
const LANES = harness.envInt('BENCH_CREATE_LANES', 16);
const TIMEOUT_S = harness.envInt('BENCH_DRAIN_TIMEOUT_SECONDS', 600);
const PG_SECONDS = harness.envInt('BENCH_PG_SECONDS', 10);
const PG_CLIENTS = harness.envInt('BENCH_PG_CLIENTS', 16);
const AMQP_MESSAGES = harness.envInt('BENCH_AMQP_MESSAGES', 20_000);
const AMQP_PREFETCH = harness.envInt('BENCH_AMQP_PREFETCH', 50);
const TRANSITIONS_PER_PAYOUT = 2;
/** BENCH_PROFILE=1: workers and relay harness.run under `--cpu-prof`; their profiles are summarised at the end. */
const PROFILE = process.env.BENCH_PROFILE === '1';
const PROFILE_DIR = join(RESULTS, 'profiles', `drain-${process.pid}`);
const TARGET_RATIO = 0.8;
/** Most resident memory a worker may reach while draining. */
const TARGET_WORKER_RSS_MB = 150;

/** The pipeline's environment here: `BENCH_WORKER_CONCURRENCY` as `WORKER_CONCURRENCY` when set. */
function roleEnv(databaseUrl: string): Record<string, string> {
  return harness.pipelineEnv(databaseUrl, WORKER_CONCURRENCY ? { WORKER_CONCURRENCY } : {});
}

/** Creates payouts through the service (compiled, from dist/), in-process, and tells the relays of them. */
interface Creator {
  /** `count` payouts, `LANES` at a time, each with its own idempotency key; answers the creates per second. */
  create(count: number): Promise<number>;
  /** One NOTIFY, as the API sends after its creates. */
  notify(): Promise<void>;
  close(): Promise<void>;
}

/** The service on a pool of its own and one client's key, for every round of the run. */
async function openCreator(databaseUrl: string): Promise<Creator> {
  const { loadConfig } = await harness.fromDist<typeof ConfigModule>('src/config.ts');
  const { openDatabase, payoutParts } = await harness.fromDist<typeof PartsModule>('src/roles/parts.ts');
  const { createMetrics } = await harness.fromDist<typeof MetricsModule>('src/metrics.ts');
  const { toPayoutResource } = await harness.fromDist<typeof ResourcesModule>('src/http/resources.ts');
  const { ApiKeys } = await harness.fromDist<typeof ApiKeysModule>('src/domain/api-keys.ts');
  const { PgApiKeyStore } = await harness.fromDist<typeof ClientsModule>(
    'src/persistence/client-repository.ts',
  );
  const { notifyOutbox } = await harness.fromDist<typeof OutboxModule>(
    'src/persistence/outbox-repository.ts',
  );
  const { createLogger } = await harness.fromDist<typeof LoggerModule>('src/logger.ts');
  const config = loadConfig({ ...process.env, ...roleEnv(databaseUrl), DATABASE_POOL_MAX: String(LANES) });
  const log = createLogger({ level: 'warn' });
  const db = openDatabase(config, log);
  // No NOTIFY per create: the relay is paused while a round is created, and is told once, by `notify`.
  const { service } = payoutParts(config, db, createMetrics({ defaults: false }), log, {
    wake: () => undefined,
  });
  try {
    const issued = await new ApiKeys(new PgApiKeyStore(db)).issue('bench-drain', 'client');
    const principal: Principal = { clientId: issued.clientId, role: 'client', actor: `key:${issued.keyId}` };
    const input = { ...CREATE_INPUT, description: 'bench drain' };
    return {
      async create(count) {
        let next = 0;
        const t0 = performance.now();
        const lane = async () => {
          while (next < count) {
            next += 1;
            await service.createPayout(principal, input, {
              requestId: null,
              idempotencyKey: randomUUID(),
              answer: (payout) => ({
                status: 201,
                body: toPayoutResource(payout, principal) as unknown as Record<string, unknown>,
              }),
            });
          }
        };
        await Promise.all(Array.from({ length: LANES }, lane));
        return count / ((performance.now() - t0) / 1000);
      },
      notify: () => notifyOutbox(db),
      close: () => db.destroy(),
    };
  } catch (error) {
    await db.destroy();
    throw error;
  }
}

interface Progress {
  t: number;
  final: number;
  counts: Record<string, number>;
}

/**
 * The database's view of the rounds, on one connection held for the run: a connection per poll would start a
 * backend five times a second beside the pipeline it measures.
 */
interface Observer {
  /** The database's clock, in seconds since the epoch. */
  now(): Promise<number>;
  statusCounts(): Promise<Record<string, number>>;
  /** When the latest payout became final at or after `since` (both by the database's clock); NaN if none did. */
  lastFinalAt(since: number): Promise<number>;
  close(): Promise<void>;
}

async function openObserver(databaseUrl: string): Promise<Observer> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const seconds = async (sql: string, values: unknown[] = []) => {
    const value = (await client.query<{ s: string | null }>(sql, values)).rows[0]?.s;
    return value == null ? NaN : Number(value);
  };
  return {
    now: () => seconds('SELECT extract(epoch FROM clock_timestamp())::text AS s'),
    async statusCounts() {
      const { rows } = await client.query<{ status: string; n: string }>(
        'SELECT status, count(*) AS n FROM payouts GROUP BY status',
      );
      return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
    },
    lastFinalAt: (since) =>
      seconds(
        `SELECT extract(epoch FROM max(status_changed_at))::text AS s FROM payouts
          WHERE status IN ('completed', 'failed', 'cancelled') AND status_changed_at >= to_timestamp($1)`,
        [since],
      ),
    close: () => client.end(),
  };
}

const finalOf = (counts: Record<string, number>) =>
  (counts.completed ?? 0) + (counts.failed ?? 0) + (counts.cancelled ?? 0);

function startRole(role: 'worker' | 'relay', index: number, databaseUrl: string): Promise<Child> {
  return harness.startPipelineRole(`${role} ${index}`, role, databaseUrl, {
    env: WORKER_CONCURRENCY ? { WORKER_CONCURRENCY } : {},
    nodeArgs: PROFILE
      ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${role}-${index}.cpuprofile`]
      : [],
  });
}

/**
 * One round on a running pipeline: the relay is paused (SIGSTOP) while `count` payouts are created, so their outbox
 * rows wait as one backlog; then it is told (NOTIFY, as the API tells it after a create) and resumed, and the clock
 * starts. The database is polled until the round's payouts are final. `before` payouts were final when the round
 * began (earlier rounds'); the progress counts this round's only. The round's time is the database's: from its
 * clock just before the relay resumes to the last payout's final transition, not to the poll that saw it (up to
 * a poll's interval later).
 */
async function drainRound(
  observer: Observer,
  creator: Creator,
  workers: Child[],
  relay: Child,
  before: number,
  count: number,
) {
  relay.proc.kill('SIGSTOP');
  let createRate: number;
  let startedAt: number;
  try {
    createRate = await creator.create(count);
    await creator.notify();
    await harness.waitForQuietMachine();
    startedAt = await observer.now();
  } finally {
    relay.proc.kill('SIGCONT');
  }
  const roles = [...workers, relay];
  const cpuAtStart = new Map(roles.map((role) => [role, harness.cpuTimeMs(role.proc.pid)]));
  const started = performance.now();
  const progress: Progress[] = [];
  let lastPrint = started;
  for (;;) {
    const counts = await observer.statusCounts();
    const now = performance.now();
    const final = finalOf(counts) - before;
    progress.push({ t: (now - started) / 1000, final, counts });
    if (final >= count) break;
    for (const role of roles) {
      if (role.proc.exitCode !== null) {
        throw new HarnessError(`${role.name} exited with ${role.proc.exitCode}:\n${role.output()}`);
      }
    }
    if (now - started > TIMEOUT_S * 1000) {
      harness.loud(`drain did not finish within ${TIMEOUT_S} s: ${JSON.stringify(counts)}`);
      break;
    }
    if (now - lastPrint > 5000) {
      lastPrint = now;
      process.stdout.write(
        `  ${harness.fmt((now - started) / 1000)} s: ${final} final ${JSON.stringify(counts)}\n`,
      );
    }
    await harness.sleep(200);
  }
  // CPU (user + system) each role spent on the round, per payout: where the pipeline's time goes.
  const used = (role: Child) => harness.cpuTimeMs(role.proc.pid) - (cpuAtStart.get(role) ?? 0);
  const workersCpu = workers.reduce((sum, role) => sum + used(role), 0);
  return {
    seconds: (await observer.lastFinalAt(startedAt)) - startedAt,
    progress,
    createRate,
    cpuMsPerPayout: { workers: workersCpu / count, relay: used(relay) / count },
  };
}

/** pgbench's rates for the service's two transaction shapes (`../shared/limits/pg_floor.sh`). */
interface PgFloor {
  transitionTps: number;
  createTps: number;
}

/** PostgreSQL's floor, measured now: printed, and parsed. */
async function pgFloor(): Promise<PgFloor> {
  await harness.waitForQuietMachine();
  const out = await harness.run(
    join(LIMITS, 'pg_floor.sh'),
    [String(PG_SECONDS), String(PG_CLIENTS)],
    {},
    300_000,
  );
  process.stdout.write(out);
  return {
    transitionTps: metric(out, 'pg_floor_transition_tps'),
    createTps: metric(out, 'pg_floor_create_tps'),
  };
}

/**
 * Starts the workers and the relay (idle: nothing waits yet) and runs on them the warm-up round (if any), then
 * `ROUNDS` measured rounds, each just after its own pgbench floor (the pipeline idle meanwhile): floor and drain
 * alternate, so a drift of the machine during the run reaches both.
 */
async function drain(databaseUrl: string) {
  const creator = await openCreator(databaseUrl);
  const observer = await openObserver(databaseUrl).catch(async (error: unknown) => {
    await creator.close();
    throw error;
  });
  const roles: Child[] = [];
  try {
    for (let i = 1; i <= WORKERS; i += 1) roles.push(await startRole('worker', i, databaseUrl));
    const workers = [...roles];
    const relay = await startRole('relay', 1, databaseUrl);
    roles.push(relay);
    let warmup: { rate: number; firstFinal: number } | null = null;
    if (WARMUP_PAYOUTS > 0) {
      process.stdout.write(`warm-up: ${WARMUP_PAYOUTS} payouts, workers and relay fresh…\n`);
      const round = await drainRound(observer, creator, workers, relay, 0, WARMUP_PAYOUTS);
      const last = round.progress[round.progress.length - 1]!;
      warmup = {
        rate: last.final / round.seconds,
        firstFinal: timeAt(round.progress, 1 / WARMUP_PAYOUTS, WARMUP_PAYOUTS),
      };
      process.stdout.write(
        `warm-up: ${last.final} payouts final in ${harness.fmt(round.seconds, 2)} s: ${harness.fmt(warmup.rate)} /s ` +
          `(first final at ${harness.fmt(warmup.firstFinal, 2)} s; not compared)\n`,
      );
    }
    const rounds = [];
    for (let index = 1; index <= ROUNDS; index += 1) {
      process.stdout.write(
        `\nround ${index} of ${ROUNDS}: the floor, then ${PAYOUTS} payouts created and drained\n`,
      );
      const floor = await pgFloor();
      const before = WARMUP_PAYOUTS + (index - 1) * PAYOUTS;
      const round = await drainRound(observer, creator, workers, relay, before, PAYOUTS);
      const last = round.progress[round.progress.length - 1]!;
      const rate = last.final / round.seconds;
      const floorRate = floor.transitionTps / TRANSITIONS_PER_PAYOUT;
      const steady = (0.8 * PAYOUTS) / (timeAt(round.progress, 0.9) - timeAt(round.progress, 0.1));
      process.stdout.write(
        `round ${index}: ${last.final} payouts final in ${harness.fmt(round.seconds, 2)} s (the poll saw it at ` +
          `${harness.fmt(last.t, 2)} s): ${harness.fmt(rate)} /s (10%→90%: ${harness.fmt(steady)} /s) against ` +
          `${harness.fmt(floorRate)} = ${harness.fmt(rate / floorRate, 2)}; created at ` +
          `${harness.fmt(round.createRate)} /s in-process (not compared)\n`,
      );
      rounds.push({
        ...round,
        floor,
        floorRate,
        rate,
        steady,
        final: last.final,
        firstFinal: timeAt(round.progress, 1 / PAYOUTS),
      });
    }
    // Peak resident memory of each worker over every round (VmHWM), read while it still runs.
    const workerRssMb = workers.map((role) => harness.peakRssMb(role.proc.pid));
    const counts = await observer.statusCounts();
    return { rounds, counts, workerRssMb, warmup };
  } finally {
    for (const role of roles.reverse()) await harness.stop(role);
    await observer.close();
    await creator.close();
  }
}

/** Seconds at which `share` of a round's `count` payouts were final, interpolated between polls. */
function timeAt(progress: Progress[], share: number, count = PAYOUTS): number {
  const goal = count * share;
  for (let i = 1; i < progress.length; i += 1) {
    const a = progress[i - 1]!;
    const b = progress[i]!;
    if (b.final >= goal)
      return b.final === a.final ? b.t : a.t + ((goal - a.final) / (b.final - a.final)) * (b.t - a.t);
  }
  return NaN;
}

function metric(output: string, name: string): number {
  const match = new RegExp(`^${name} (\\d+(?:\\.\\d+)?)$`, 'm').exec(output);
  if (!match) throw new HarnessError(`no ${name} in:\n${output}`);
  return Number(match[1]);
}

async function main(): Promise<void> {
  if (!existsSync(MAIN))
    throw new HarnessError(`${MAIN} is missing: harness.run \`make bench-drain\` (it builds first)`);
  process.stdout.write(
    `make bench-drain: ${PAYOUTS} payouts, ${WORKERS} worker(s)` +
      `${WORKER_CONCURRENCY ? ` × concurrency ${WORKER_CONCURRENCY}` : ''} + 1 relay, provider delay 0\n`,
  );
  const databaseUrl = await harness.recreateDatabase('payouts_bench_drain');
  await harness.run('node', [MAIN, 'migrate'], roleEnv(databaseUrl));

  let results: Record<string, unknown> | undefined;
  try {
    await harness.waitForQuietMachine();
    const { rounds, counts, workerRssMb, warmup } = await drain(databaseUrl);
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
    const rate = mean(rounds.map((round) => round.rate));
    const floorRate = mean(rounds.map((round) => round.floorRate));
    const steady = mean(rounds.map((round) => round.steady));
    const ratio = rate / floorRate;
    const cpuMsPerPayout = {
      workers: mean(rounds.map((round) => round.cpuMsPerPayout.workers)),
      relay: mean(rounds.map((round) => round.cpuMsPerPayout.relay)),
    };

    const checks = await harness.withPg(databaseUrl, async (client) => {
      const one = async (sql: string) => Number((await client.query<{ n: string }>(sql)).rows[0]?.n ?? 0);
      return {
        providerEffects: await one('SELECT count(*) AS n FROM provider_transfers'),
        paidTwice: await one(
          'SELECT count(*) AS n FROM (SELECT payout_id FROM provider_transfers GROUP BY payout_id HAVING count(*) > 1) t',
        ),
        unsentOutbox: await one('SELECT count(*) AS n FROM outbox WHERE published_at IS NULL'),
        transitions: await one("SELECT count(*) AS n FROM payout_events WHERE event <> 'CREATE'"),
      };
    });
    const total = WARMUP_PAYOUTS + ROUNDS * PAYOUTS;
    if ((counts.completed ?? 0) !== total)
      harness.loud(`not every payout completed: ${JSON.stringify(counts)}`);
    if (checks.paidTwice > 0) harness.loud(`${checks.paidTwice} payouts have more than one provider effect`);

    process.stdout.write("\nthe broker's floor, for context:\n");
    await harness.waitForQuietMachine();
    const amqpOut = await harness.run('node', [
      join(LIMITS, 'amqp_floor.mjs'),
      String(AMQP_MESSAGES),
      String(AMQP_PREFETCH),
    ]);
    process.stdout.write(amqpOut);
    const amqpRate = metric(amqpOut, 'amqp_floor_msgs_per_s');

    process.stdout.write(
      `\ndrain: ${ROUNDS} round(s) of ${PAYOUTS} payouts, each timed by the database's clock from the relay's ` +
        `resumption to the last final transition, ${warmup ? `after a warm-up of ${WARMUP_PAYOUTS} payouts` : 'no warm-up'}\n` +
        `  all ${total} payouts: statuses ${JSON.stringify(counts)}; provider effects ${checks.providerEffects}, ` +
        `paid twice ${checks.paidTwice}, unsent outbox rows ${checks.unsentOutbox}, transitions ${checks.transitions}\n` +
        `  drain rate (mean)           ${harness.fmt(rate).padStart(8)} payouts/s   (10%→90%: ${harness.fmt(steady)} /s; rounds ` +
        `${rounds.map((round) => harness.fmt(round.rate)).join(', ')})\n` +
        `  CPU per payout: workers ${harness.fmt(cpuMsPerPayout.workers, 2)} ms, relay ${harness.fmt(cpuMsPerPayout.relay, 2)} ms\n` +
        `  floor (mean): pgbench transition ÷ ${TRANSITIONS_PER_PAYOUT} = ${harness.fmt(floorRate)} payouts/s   (rounds ` +
        `${rounds.map((round) => `${harness.fmt(round.floor.transitionTps, 0)} tps`).join(', ')}; broker ${harness.fmt(amqpRate, 0)} msgs/s)\n` +
        `  drain / floor = ${harness.fmt(ratio, 2)}   target ≥ ${TARGET_RATIO}   ${harness.verdict(ratio >= TARGET_RATIO)}` +
        `   (rounds ${rounds.map((round) => harness.fmt(round.rate / round.floorRate, 2)).join(', ')})\n` +
        `  (10%→90% rate / floor = ${harness.fmt(steady / floorRate, 2)}; drain / broker floor = ${harness.fmt(rate / amqpRate, 2)})\n` +
        `  worker peak RSS (VmHWM)  = ${workerRssMb.map((mb) => `${harness.fmt(mb, 0)} MB`).join(', ')}   target ≤ ${TARGET_WORKER_RSS_MB} MB ` +
        `${harness.verdict(workerRssMb.every((mb) => mb <= TARGET_WORKER_RSS_MB))}\n`,
    );
    if (PROFILE) {
      for (const name of ['worker-1', 'relay-1']) {
        process.stdout.write(`\n${name} (${join(PROFILE_DIR, `${name}.cpuprofile`)}):\n`);
        printSummary(summariseFile(join(PROFILE_DIR, `${name}.cpuprofile`), 20));
      }
    }
    results = {
      settings: {
        payouts: PAYOUTS,
        rounds: ROUNDS,
        warmupPayouts: WARMUP_PAYOUTS,
        workers: WORKERS,
        workerConcurrency: WORKER_CONCURRENCY ?? 'default',
      },
      warmup,
      drain: { rate, steadyRate: steady, counts, checks, cpuMsPerPayout, workerRssMb },
      floors: { floorRate, amqpRate },
      ratio,
      target: TARGET_RATIO,
      rounds,
    };
  } finally {
    await harness
      .deleteBenchTopology()
      .catch((error: unknown) => harness.loud(`could not delete the bench queues: ${String(error)}`));
  }
  const file = harness.writeResults('drain', {
    at: new Date().toISOString(),
    ...(results ?? {}),
    problems: harness.problems,
  });
  process.stdout.write(`\nresults: ${file}\n`);
  harness.reportProblems();
}

await harness.runMain('bench-drain', main);
