/**
 * `make test-cluster-processes`: many processes of each role behind one address, on this machine, stay correct.
 *
 * Two API processes behind HAProxy in HTTP mode (test/cluster/haproxy.ts: requests balanced one by one), three
 * workers, two relays and a sweeper, from dist/, on the default PostgreSQL (a fresh database of this run's own,
 * dropped at the end) and the default broker under this run's AMQP namespace. `PAYOUTS` creates go through the
 * proxy, `CONCURRENCY` at a time. Along the way:
 * - every `TWIN_EVERY`th create is also sent, with the same Idempotency-Key and at the same moment, to each API
 *   process directly: the two must end with one payout (201, the other a replay of it, after a 409 while the
 *   first was in flight);
 * - every `RACE_EVERY`th payout, once created, gets a cancel through each API process at once and a description
 *   change through the proxy, racing each other and the workers: at most one cancel wins; a cancelled payout
 *   was never paid, a completed one had no cancel accepted.
 * Then every payout must be final, and the audits hold: one provider transfer per completed payout, none paid
 * twice or paid while cancelled, no unsent outbox row, no dead letter, every id answered 201 in the database and
 * no other payout. Prints the per-process request counts (HAProxy's `show stat`) and the relays' and workers'
 * shares of the work (their /metrics). PASS or FAIL, exit status 1 on FAIL.
 *
 * Needs `npm run build`, PostgreSQL on 127.0.0.1:5432 (BENCH_PG_URL), RabbitMQ on 127.0.0.1:5672 and HAProxy.
 */
import { existsSync } from 'node:fs';
import type { Answer, Role } from './common.js';
import {
  audit,
  auditFailures,
  createPayout,
  createUntilCreated,
  dropDatabase,
  printAudit,
  printVerdict,
  seconds,
  startRole,
  stillRunning,
  waitAllFinal,
} from './common.js';
import { startProxy } from './haproxy.js';
import {
  HarnessError,
  MAIN,
  envInt,
  prepareServiceDatabase,
  runMain,
  stop,
  withPg,
} from '../../bench/lib.js';

const PAYOUTS = envInt('CLUSTER_PAYOUTS', 3000);
const CONCURRENCY = envInt('CLUSTER_CONCURRENCY', 16);
const TWIN_EVERY = 25;
const RACE_EVERY = 10;
const FINAL_TIMEOUT_MS = envInt('CLUSTER_FINAL_TIMEOUT_SECONDS', 180) * 1000;
const DATABASE = `payouts_bench_cluster_${process.pid}`;

interface Twin {
  key: string;
  answers: Answer[];
}

interface Race {
  id: string;
  /** The statuses the two cancels were answered. */
  cancels: number[];
  /** The description change's status. */
  describe: number;
}

/** `PATCH /api/payouts/{id}` with `body`; the status, 0 when no answer came. */
async function patchPayout(port: number, apiKey: string, id: string, body: object): Promise<number> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/api/payouts/${id}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 0;
  }
}

/** Two cancels (one to each API) and a description change (through the proxy), all at once. */
async function race(apis: Role[], proxyPort: number, apiKey: string, id: string): Promise<Race> {
  const cancel = { status: 'cancelled', reason: 'cluster race' };
  const [first, second, describe] = await Promise.all([
    patchPayout(apis[0]!.port!, apiKey, id, cancel),
    patchPayout(apis[1]!.port!, apiKey, id, cancel),
    patchPayout(proxyPort, apiKey, id, { description: 'changed in the race' }),
  ]);
  return { id, cancels: [first, second], describe: describe };
}

/** The same create sent to both API processes at once, each retried until 201 (past the 409 of the first). */
async function twin(apis: Role[], apiKey: string, key: string): Promise<Twin> {
  const answers = await Promise.all(apis.map((api) => createUntilCreated(api.port!, apiKey, key)));
  return { key, answers };
}

interface Load {
  creates: Answer[];
  twins: Twin[];
  races: Race[];
  ms: number;
}

/** `PAYOUTS` creates through the proxy, `CONCURRENCY` at a time, with the twins and races along the way. */
async function createLoad(apis: Role[], proxyPort: number, apiKey: string): Promise<Load> {
  const load: Load = { creates: [], twins: [], races: [], ms: 0 };
  let next = 0;
  const t0 = performance.now();
  const lane = async () => {
    while (next < PAYOUTS) {
      next += 1;
      const n = next;
      const key = `procs-${process.pid}-${n}`;
      if (n % TWIN_EVERY === 0) {
        load.twins.push(await twin(apis, apiKey, key));
        continue;
      }
      const answer = await createUntilCreated(proxyPort, apiKey, key);
      load.creates.push(answer);
      if (answer.status === 201 && n % RACE_EVERY === 0)
        load.races.push(await race(apis, proxyPort, apiKey, answer.id!));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  load.ms = performance.now() - t0;
  return load;
}

/** The twins' failures: each must end with both answers 201 for one payout, one of them a replay. */
function twinFailures(twins: Twin[]): string[] {
  const failures: string[] = [];
  for (const { key, answers } of twins) {
    const ids = new Set(answers.map((a) => a.id));
    if (answers.some((a) => a.status !== 201) || ids.size !== 1 || !answers.some((a) => a.replayed))
      failures.push(
        `twin ${key}: ${answers.map((a) => `${a.status} ${a.id ?? ''}${a.replayed ? ' (replay)' : ''}`).join(' / ')}`,
      );
  }
  return failures;
}

/** The races against the database: at most one cancel accepted; cancelled ⇔ one accepted; never paid if cancelled. */
async function raceFailures(url: string, races: Race[]): Promise<{ failures: string[]; cancelled: number }> {
  const failures: string[] = [];
  const { rows } = await withPg(url, (client) =>
    client.query<{ id: string; status: string; description: string | null; transfers: string }>(
      `SELECT p.id, p.status, p.description,
              (SELECT count(*) FROM provider_transfers t WHERE t.payout_id = p.id AND t.result = 'succeeded') AS transfers
         FROM payouts p WHERE p.id = ANY($1::uuid[])`,
      [races.map((r) => r.id)],
    ),
  );
  const byId = new Map(rows.map((row) => [row.id, row]));
  let cancelled = 0;
  for (const r of races) {
    const row = byId.get(r.id);
    const accepted = r.cancels.filter((status) => status === 200).length;
    const unexpected = [...r.cancels, r.describe].filter((status) => status !== 200 && status !== 409);
    if (!row) failures.push(`race ${r.id}: payout missing`);
    else if (unexpected.length > 0) failures.push(`race ${r.id}: answered ${unexpected.join(', ')}`);
    else if (accepted > 1) failures.push(`race ${r.id}: ${accepted} cancels accepted`);
    else if ((row.status === 'cancelled') !== (accepted === 1))
      failures.push(`race ${r.id}: ${row.status} but ${accepted} cancel(s) accepted`);
    else if (row.status === 'cancelled' && Number(row.transfers) > 0)
      failures.push(`race ${r.id}: cancelled but paid`);
    else if (r.describe === 200 && row.description !== 'changed in the race')
      failures.push(`race ${r.id}: description change answered 200 but not stored`);
    if (row?.status === 'cancelled') cancelled += 1;
  }
  return { failures, cancelled };
}

/** Sum of a counter over its label sets, from a role's /metrics. */
async function metricSum(role: Role, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${role.opsPort}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

/** Replays a sample of creates through the proxy: the same payout, marked as a replay. */
async function replaySample(proxyPort: number, apiKey: string, creates: Answer[]): Promise<string[]> {
  const failures: string[] = [];
  for (const first of creates.filter((_, i) => i % 60 === 0)) {
    const again = await createPayout(proxyPort, apiKey, first.key);
    if (again.status !== 201 || again.id !== first.id || !again.replayed)
      failures.push(`replay of ${first.key}: ${again.status} ${again.id ?? ''} (first ${first.id ?? ''})`);
  }
  return failures;
}

async function main(): Promise<void> {
  if (!existsSync(MAIN)) throw new HarnessError(`${MAIN} is missing: run \`npm run build\` first`);
  const failures: string[] = [];
  const roles: Role[] = [];
  try {
    const { url, apiKey } = await prepareServiceDatabase(DATABASE);
    const apis = [await startRole('api 1', 'api', url), await startRole('api 2', 'api', url)];
    roles.push(...apis);
    for (let i = 1; i <= 3; i += 1) roles.push(await startRole(`worker ${i}`, 'worker', url));
    for (let i = 1; i <= 2; i += 1) roles.push(await startRole(`relay ${i}`, 'relay', url));
    roles.push(await startRole('sweeper', 'sweeper', url));
    const proxy = await startProxy('haproxy (api)', {
      mode: 'http',
      servers: apis.map((api, i) => ({ name: `api${i + 1}`, port: api.port! })),
    });
    process.stdout.write(
      `HAProxy :${proxy.port} → api 1 :${apis[0]!.port}, api 2 :${apis[1]!.port}; 3 workers, 2 relays, a sweeper; ` +
        `${PAYOUTS} creates, ${CONCURRENCY} at a time\n`,
    );

    const load = await createLoad(apis, proxy.port, apiKey);
    const created = load.creates.filter((a) => a.status === 201);
    process.stdout.write(
      `creates: ${load.creates.length} through the proxy (${created.length} answered 201) and ${load.twins.length} ` +
        `twins in ${seconds(load.ms)}; ${load.races.length} races of two cancels and a description change\n`,
    );
    if (created.length !== load.creates.length)
      failures.push(`${load.creates.length - created.length} creates never got 201`);
    failures.push(...twinFailures(load.twins));
    failures.push(...(await replaySample(proxy.port, apiKey, created)));

    const final = await waitAllFinal(url, FINAL_TIMEOUT_MS);
    process.stdout.write(`every payout final ${seconds(final.ms)} after the last create\n`);

    const races = await raceFailures(url, load.races);
    failures.push(...races.failures);
    const acceptedCancels = load.races.flatMap((r) => r.cancels).filter((s) => s === 200).length;
    process.stdout.write(
      `races: ${load.races.length}, cancels accepted ${acceptedCancels}, payouts cancelled ${races.cancelled}, ` +
        `description changes accepted ${load.races.filter((r) => r.describe === 200).length}\n`,
    );

    const ids = new Set(
      [...created, ...load.twins.flatMap((t) => t.answers)].filter((a) => a.status === 201).map((a) => a.id!),
    );
    const result = await audit(url, ids);
    printAudit(result);
    failures.push(...auditFailures(result));
    if ((result.counts.completed ?? 0) + races.cancelled !== ids.size)
      failures.push(
        `${ids.size} payouts, ${result.counts.completed ?? 0} completed and ${races.cancelled} cancelled`,
      );

    const servers = (await proxy.stats()).filter(
      (row) => row.pxname === 'be' && row.svname.startsWith('api'),
    );
    process.stdout.write('requests per API process (HAProxy show stat):\n');
    for (const row of servers) {
      process.stdout.write(
        `  ${row.svname}: ${row.req_tot} requests (2xx ${row.hrsp_2xx}, 4xx ${row.hrsp_4xx}, 5xx ${row.hrsp_5xx}), ` +
          `${row.stot} connections\n`,
      );
      if (row.req_tot === 0) failures.push(`${row.svname} served no request through the proxy`);
    }
    process.stdout.write('work per process (/metrics):\n');
    for (const role of roles.filter((r) => r.role === 'relay' || r.role === 'worker')) {
      const metric =
        role.role === 'relay' ? 'payouts_outbox_published_total' : 'payouts_consumer_messages_total';
      process.stdout.write(`  ${role.name}: ${await metricSum(role, metric)} ${metric}\n`);
    }
    for (const role of roles)
      if (!stillRunning(role)) failures.push(`${role.name} exited:\n${role.child.output()}`);

    for (const role of [...roles].reverse()) await stop(role.child);
    await proxy.stop();
  } finally {
    await dropDatabase(DATABASE);
  }
  printVerdict(failures);
}

await runMain('test-cluster-processes', main, { deleteTopology: true });
