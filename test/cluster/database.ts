/**
 * `make test-cluster-database`: the service survives the loss of its PostgreSQL primary under load.
 *
 * A primary and a synchronous standby of their own (test/cluster/postgres.ts) behind HAProxy in TCP mode
 * (test/cluster/haproxy.ts): the service's DATABASE_URL is the proxy, as node-postgres has no multi-host URLs.
 * `migrate`, then an API, a relay, a worker and the sweeper from dist/ on the default broker under their own AMQP
 * namespace. Creates run continuously (`CONCURRENCY` clients, a fresh Idempotency-Key each); after
 * `BEFORE_SECONDS` the primary is killed (`stop -m immediate`), the standby promoted and the proxy repointed; the
 * creates go on for `AFTER_SECONDS`. Creates that failed in the gap are sent again with the same key afterwards,
 * as a client would. Then every payout must finish.
 *
 * Pass: every payout answered 201 before the failover exists in the promoted database (synchronous replication:
 * an acknowledged commit is on the standby), every id answered 201 at all exists and no other payout does (a retry
 * found the first attempt's payout rather than making a second), no payout paid twice, all final, no unsent
 * outbox row, no dead letter; the API, the relay and the worker work again within `RECOVERY_BOUND_MS` of the kill
 * and every role's /readyz answers 200 again within it, none of them restarted; the relay LISTENs on the new
 * primary; every payout is final within `RELAY_LEASE_MS + RECOVERY_BOUND_MS` of the kill (a relay round the kill
 * interrupted leaves its rows leased until the lease ends). Prints the write gap and each role's recovery time.
 * "Before the failover" is every 201 answered before the proxy switched (the old primary committed it: the new one
 * was not reachable yet); the write gap runs from the last of those to the first 201 answered after the switch
 * (committed on the new primary).
 *
 * Needs `npm run build` (the roles run from dist/, like the benchmarks), pg_createcluster (PostgreSQL 15), HAProxy,
 * root (to create the clusters) and RabbitMQ on 127.0.0.1:5672. The default cluster 15/main is not touched.
 */
import { existsSync } from 'node:fs';
import type { Role } from './common.js';
import {
  audit,
  auditFailures,
  createPayout,
  createUntilCreated,
  isReady,
  printAudit,
  printVerdict,
  seconds,
  startRole,
  stillRunning,
  waitAllFinal,
  waitOutboxSent,
} from './common.js';
import type { Answer } from './common.js';
import type { Proxy } from './haproxy.js';
import { startProxy } from './haproxy.js';
import type { Pair } from './postgres.js';
import {
  clusterUrl,
  createSyncPair,
  dropClusters,
  dropLeftovers,
  killImmediately,
  promote,
} from './postgres.js';
import {
  BENCH_AMQP_ENV,
  HarnessError,
  MAIN,
  envInt,
  issueKey,
  run,
  runMain,
  sleep,
  stop,
  withPg,
} from '../../bench/lib.js';

/** Every role works again (and its /readyz answers 200) within this long after the primary is killed. */
const RECOVERY_BOUND_MS = 30_000;
const CONCURRENCY = envInt('CLUSTER_CONCURRENCY', 8);
const BEFORE_SECONDS = envInt('CLUSTER_BEFORE_SECONDS', 6);
const AFTER_SECONDS = envInt('CLUSTER_AFTER_SECONDS', 10);
const FINAL_TIMEOUT_MS = envInt('CLUSTER_FINAL_TIMEOUT_SECONDS', 120) * 1000;
const DATABASE = 'payouts_ha';
const SERVER = 'pg';
/** The relay's lease of a claimed outbox row (the service's default RELAY_LEASE_MS). */
const RELAY_LEASE_MS = 30_000;

interface Failover {
  killAt: number;
  killMs: number;
  promoteMs: number;
  switchMs: number;
  /** When the proxy pointed at the promoted standby. */
  switchedAt: number;
}

/** The creates: `CONCURRENCY` loops, each a fresh key per request, until `stopAt()` says so. */
async function createLoad(port: number, apiKey: string, keepGoing: () => boolean): Promise<Answer[]> {
  const answers: Answer[] = [];
  let sequence = 0;
  const loop = async () => {
    while (keepGoing()) {
      sequence += 1;
      const answer = await createPayout(port, apiKey, `ha-${process.pid}-${sequence}`);
      answers.push(answer);
      // A client backs off a little while the service answers errors; no busy loop against a dead database.
      if (answer.status !== 201) await sleep(50);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  return answers;
}

/** Kills the primary, promotes the standby, repoints the proxy; times each step. */
async function failOver(pair: Pair, proxy: Proxy): Promise<Failover> {
  const killAt = Date.now();
  const killMs = await killImmediately(pair.primary);
  const promoteMs = await promote(pair.standby);
  const switchMs = await proxy.repoint(SERVER, pair.standby.port);
  return { killAt, killMs, promoteMs, switchMs, switchedAt: Date.now() };
}

/**
 * Polls every role's /readyz from just before the kill: when it first answered 503 (or nothing), and when it
 * answered 200 again after that. A role that never stopped answering 200 has no entry in either.
 */
function watchReadiness(roles: Role[], keepGoing: () => boolean) {
  const notReadyAt = new Map<string, number>();
  const readyAgainAt = new Map<string, number>();
  const done = (async () => {
    while (keepGoing()) {
      await Promise.all(
        roles.map(async (role) => {
          if (readyAgainAt.has(role.name)) return;
          const ready = await isReady(role);
          if (!ready && !notReadyAt.has(role.name)) notReadyAt.set(role.name, Date.now());
          else if (ready && notReadyAt.has(role.name)) readyAgainAt.set(role.name, Date.now());
        }),
      );
      await sleep(100);
    }
  })();
  return { notReadyAt, readyAgainAt, done };
}

/**
 * When each role did its work again, from the promoted database's own records: the first write after the proxy
 * switched to it (nothing before that can have reached it). `answers` are the creates' answers.
 */
async function workAgain(url: string, switchedAt: number, answers: Answer[]) {
  const firstCreate = answers
    .filter((a) => a.status === 201 && a.at > switchedAt)
    .sort((a, b) => a.at - b.at)[0];
  return withPg(url, async (client) => {
    const at = async (sql: string) => {
      const { rows } = await client.query<{ t: Date | null }>(sql, [new Date(switchedAt)]);
      return rows[0]?.t ? rows[0].t.getTime() : NaN;
    };
    return {
      api: firstCreate ? firstCreate.at : NaN,
      // The relay marks a row sent after the broker confirmed it: its first mark on the new primary.
      relay: await at('SELECT min(published_at) AS t FROM outbox WHERE published_at > $1'),
      // The worker's first transition on the new primary, and the first payout it completed there.
      worker: await at(`SELECT min(at) AS t FROM payout_events WHERE at > $1 AND actor_role = 'worker'`),
      completed: await at(`SELECT min(at) AS t FROM payout_events WHERE at > $1 AND to_status = 'completed'`),
    };
  });
}

/** The relay's LISTEN connections on `url`'s server (its listener reconnects after losing the old primary). */
async function relayListens(url: string): Promise<number> {
  return withPg(url, async (client) => {
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'payouts-relay-listen' AND query LIKE 'LISTEN%'`,
    );
    return Number(rows[0]?.n ?? 0);
  });
}

/**
 * Unsent outbox rows still leased: a relay round the kill interrupted after its claim had committed (and reached
 * the standby). Published already but not marked, or never published: either way no relay takes them again until
 * the lease runs out (`RELAY_LEASE_MS`), and then they are published (again: the worker ignores the duplicate).
 */
async function leasedRows(url: string): Promise<number> {
  return withPg(url, async (client) => {
    const { rows } = await client.query<{ n: string }>(
      'SELECT count(*) AS n FROM outbox WHERE published_at IS NULL AND locked_until > now()',
    );
    return Number(rows[0]?.n ?? 0);
  });
}

/** Sends every create that was not answered 201 again with its key; their answers. */
async function retryFailed(port: number, apiKey: string, answers: Answer[]): Promise<Answer[]> {
  const failed = answers.filter((a) => a.status !== 201);
  const retried: Answer[] = [];
  for (let i = 0; i < failed.length; i += CONCURRENCY) {
    const batch = failed.slice(i, i + CONCURRENCY);
    retried.push(...(await Promise.all(batch.map((a) => createUntilCreated(port, apiKey, a.key)))));
  }
  return retried;
}

/** A few creates answered 201 before the kill, sent again: the promoted database must replay the same payout. */
async function replaySome(port: number, apiKey: string, before: Answer[]): Promise<string[]> {
  const problems: string[] = [];
  for (const first of before.slice(0, 20)) {
    const again = await createPayout(port, apiKey, first.key);
    if (again.status !== 201 || again.id !== first.id || !again.replayed)
      problems.push(
        `${first.key}: replay answered ${again.status} ${again.id ?? ''} (first ${first.id ?? ''})`,
      );
  }
  return problems;
}

function statusHistogram(answers: Answer[]): string {
  const counts = new Map<number, number>();
  for (const a of answers) counts.set(a.status, (counts.get(a.status) ?? 0) + 1);
  return [...counts].map(([status, n]) => `${status === 0 ? 'no answer' : status}: ${n}`).join(', ');
}

async function main(): Promise<void> {
  if (!existsSync(MAIN)) throw new HarnessError(`${MAIN} is missing: run \`npm run build\` first`);
  const leftovers = dropLeftovers();
  if (leftovers.length > 0)
    process.stdout.write(`dropped clusters of an earlier run: ${leftovers.join(', ')}\n`);
  const failures: string[] = [];
  try {
    const pair = await createSyncPair();
    process.stdout.write(
      `primary ${pair.primary.name} :${pair.primary.port}, synchronous standby ${pair.standby.name} :${pair.standby.port}` +
        ` (set up in ${seconds(pair.setupMs)})\n`,
    );
    const proxy = await startProxy('haproxy (postgres)', {
      mode: 'tcp',
      servers: [{ name: SERVER, port: pair.primary.port }],
      retries: 0,
    });
    const url = `postgres://postgres@127.0.0.1:${proxy.port}/${DATABASE}`;
    await run('node', [MAIN, 'migrate'], { ...BENCH_AMQP_ENV, DATABASE_URL: url, LOG_LEVEL: 'warn' });
    const apiKey = await issueKey(url, 'cluster-ha');

    const api = await startRole('api', 'api', url);
    const roles = [
      api,
      await startRole('relay', 'relay', url),
      await startRole('worker', 'worker', url),
      await startRole('sweeper', 'sweeper', url),
    ];
    process.stdout.write(
      `HAProxy :${proxy.port} → primary; api, relay, worker, sweeper ready; creating with ${CONCURRENCY} clients\n`,
    );

    let loadUntil = Number.POSITIVE_INFINITY;
    const loading = createLoad(api.port!, apiKey, () => Date.now() < loadUntil);
    await sleep(BEFORE_SECONDS * 1000);
    const watchFrom = Date.now();
    const readiness = watchReadiness(roles, () => Date.now() < watchFrom + RECOVERY_BOUND_MS + 5000);
    const failover = await failOver(pair, proxy);
    process.stdout.write(
      `failover: primary killed in ${seconds(failover.killMs)}, standby promoted in ${seconds(failover.promoteMs)}, ` +
        `proxy switched in ${seconds(failover.switchMs)} (kill → proxy on the new primary ${seconds(failover.switchedAt - failover.killAt)})\n`,
    );
    loadUntil = failover.switchedAt + AFTER_SECONDS * 1000;
    const answers = await loading;

    const before = answers.filter((a) => a.status === 201 && a.at < failover.switchedAt);
    const after = answers.filter((a) => a.status === 201 && a.at >= failover.switchedAt);
    const lastBefore = Math.max(...before.map((a) => a.at));
    const firstAfter = Math.min(...after.map((a) => a.at));
    process.stdout.write(
      `creates: ${answers.length} sent (${statusHistogram(answers)}); 201 from the old primary ${before.length}, ` +
        `from the new one ${after.length}\n` +
        `write gap (last 201 from the old primary → first 201 from the new): ${seconds(firstAfter - lastBefore)}` +
        ` (the old primary's last 201 came ${seconds(lastBefore - failover.killAt)} after the kill began)\n`,
    );

    const retried = await retryFailed(api.port!, apiKey, answers);
    const notCreated = retried.filter((a) => a.status !== 201);
    process.stdout.write(
      `retried ${retried.length} failed creates with their keys: ${statusHistogram(retried)}` +
        ` (${retried.filter((a) => a.replayed).length} replayed a payout the failed attempt had made)\n`,
    );
    if (notCreated.length > 0)
      failures.push(`${notCreated.length} creates retried with their key never got 201`);
    failures.push(...(await replaySome(api.port!, apiKey, before)));

    const promoted = clusterUrl(pair.standby, DATABASE);
    const final = await waitAllFinal(promoted, FINAL_TIMEOUT_MS);
    const finalAt = Date.now();
    const leased = await leasedRows(promoted);
    await waitOutboxSent(promoted, RELAY_LEASE_MS + 10_000);
    process.stdout.write(
      `outbox rows leased to a relay round the kill interrupted: ${leased}; every row sent ` +
        `${seconds(Date.now() - failover.killAt)} after the kill (such rows go again once their lease ends)\n`,
    );
    await readiness.done;
    const work = await workAgain(promoted, failover.switchedAt, answers);
    const listening = await relayListens(promoted);
    process.stdout.write(`relay LISTEN connections on the new primary: ${listening}\n`);
    if (listening < 1) failures.push('the relay does not LISTEN on the new primary');
    process.stdout.write(
      `every payout final ${seconds(finalAt - failover.killAt)} after the kill ` +
        `(${seconds(final.ms)} after the load and the retries ended)\nrecovery after the kill (bound ${seconds(RECOVERY_BOUND_MS)}):\n`,
    );
    if (finalAt - failover.killAt > RELAY_LEASE_MS + RECOVERY_BOUND_MS)
      failures.push(`payouts final only ${seconds(finalAt - failover.killAt)} after the kill`);
    const recovered = (label: string, at: number) => {
      const ms = at - failover.killAt;
      const ok = Number.isFinite(ms) && ms <= RECOVERY_BOUND_MS;
      process.stdout.write(
        `  ${label.padEnd(34)} ${Number.isFinite(ms) ? seconds(ms) : 'never'}  ${ok ? 'ok' : 'FAIL'}\n`,
      );
      if (!ok) failures.push(`${label}: ${Number.isFinite(ms) ? seconds(ms) : 'never'} after the kill`);
    };
    recovered('api: first 201', work.api);
    recovered('relay: first outbox row sent', work.relay);
    recovered('worker: first transition', work.worker);
    recovered('pipeline: first payout completed', work.completed);
    for (const role of roles) {
      const down = readiness.notReadyAt.get(role.name);
      if (down === undefined) {
        process.stdout.write(`  ${`${role.name}: /readyz`.padEnd(34)} never answered other than 200\n`);
      } else {
        recovered(`${role.name}: /readyz 200 again`, readiness.readyAgainAt.get(role.name) ?? NaN);
      }
      if (!stillRunning(role)) failures.push(`${role.name} exited or was restarted:\n${role.child.output()}`);
    }

    const ids = new Set([...answers, ...retried].filter((a) => a.status === 201).map((a) => a.id!));
    const result = await audit(promoted, ids);
    printAudit(result);
    const lostBefore = result.missing.filter((id) => before.some((a) => a.id === id));
    if (lostBefore.length > 0)
      failures.push(`${lostBefore.length} payouts answered 201 before the failover are lost`);
    failures.push(...auditFailures(result));
    if (result.counts.completed !== ids.size)
      failures.push(`${ids.size} payouts answered 201 but ${result.counts.completed ?? 0} completed`);

    for (const role of [...roles].reverse()) await stop(role.child);
    await proxy.stop();
  } finally {
    dropClusters();
  }
  printVerdict(failures);
}

await runMain('test-cluster-database', main, { deleteTopology: true });
