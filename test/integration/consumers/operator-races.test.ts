/**
 * Operators racing the worker at random moments while workers are SIGKILLed mid-run. Payouts are created over
 * HTTP with the client key; each gets one operator PATCH (`failed` or `completed`, with a reason, without
 * If-Match) at a random moment shortly after its create, answered 202 (recorded) or 409 (not in a state that
 * accepts it). The worker runs in child processes around a recording provider (every call it finished is a row of
 * a table of this test), with transient provider faults, and is killed three times.
 *
 * Whatever happened: never `failed` with a payment, never `completed` without one, never a submit after the
 * provider key was closed by a void that answered, every call's answer the one ledger row's, and every
 * operator-caused outcome (`operator_failed`, an overruled request) traceable to a recorded request.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { mulberry32 } from '../../../src/adapters/simulated-provider.js';
import type { Db } from '../../../src/persistence/db.js';
import { NotifyWaker } from '../../../src/persistence/outbox-waker.js';
import {
  consumerEnv,
  query,
  statusCounts,
  useConsumerHarness,
  waitFor,
  waitUntilFinal,
} from '../../support/consumers.js';
import { openTestDb } from '../../support/database.js';
import { createTestClient, payoutInput } from '../../support/fixtures.js';
import type { TestApi } from '../../support/http.js';
import { startTestApi } from '../../support/http.js';

const PAYOUTS = 240;
const SEED = 20261205;
/**
 * Each payout's operator request is sent at most this long after its create answered, at a moment drawn
 * log-uniformly: every time scale of a payout's run (the relay's pick-up, START, the submit in flight, the retry
 * back-offs, long after the end) gets its share, however fast the machine is.
 */
const OPERATOR_WINDOW_MS = 600;
/**
 * Payouts are created in bursts of `BURST` at once, a random 300–600 ms apart: each burst keeps both workers busy
 * with several payouts in flight, so a kill (at a count of final payouts, reached inside a burst) hits work at
 * every step, while the run stays long enough for each replacement worker to start before the next kill.
 */
const BURST = 12;
const BURST_GAP_MS = { min: 300, max: 600 };
const WORKERS = 2;
/** A worker child is SIGKILLed (and replaced) when this many payouts are final. */
const KILL_AT_FINAL = [30, 90, 150];

/** Shared by the file's configuration (topology, relay) and the worker children. */
const SETTINGS = {
  RETRY_DELAYS_MS: '20,50,100',
  // A command held by a killed worker is published again by the relay after this long.
  COMMAND_LEASE_MS: '2000',
  PROVIDER_TIMEOUT_MS: '500',
};

type Requested = 'failed' | 'completed';

interface Plan {
  /** When the operator's PATCH is sent, after the create answered. */
  operatorDelayMs: number;
  requested: Requested;
}

interface OperatorAnswer {
  id: string;
  requested: Requested;
  status: number;
  detail: string;
}

interface CallRow {
  payout_id: string;
  kind: 'submit' | 'void' | 'status';
  started_at: Date;
  ended_at: Date;
  answer: string;
  pid: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('consumers: operators racing the worker', function () {
  this.timeout(240_000);
  const harness = useConsumerHarness({ env: SETTINGS, roleEnv: SETTINGS });

  afterEach(() => harness.expectNothingDeadLettered());

  it("operators racing the worker at random moments, workers killed mid-run: never failed with a payment, never completed without one, never two submits' effects", async () => {
    const started = Date.now();
    const db = harness.ctx.db;
    const client = await createTestClient(db, 'races');
    const table = `test_provider_calls_${randomBytes(4).toString('hex')}`;
    await db.raw(
      `CREATE TABLE ${table} (id bigserial PRIMARY KEY, payout_id uuid, kind text, started_at timestamptz,
         ended_at timestamptz, answer text, pid integer)`,
    );

    // Every random choice is drawn up front from one seeded generator: the same plan on every run.
    const random = mulberry32(SEED);
    const plans: Plan[] = Array.from({ length: PAYOUTS }, () => ({
      operatorDelayMs: Math.round(Math.exp(random() * Math.log(OPERATOR_WINDOW_MS + 1))) - 1,
      // Mostly requests to fail: `operator_failed` needs one recorded and then a transient submit (1 in 5).
      requested: random() < 0.7 ? 'failed' : 'completed',
    }));
    const burstGaps = Array.from({ length: Math.ceil(PAYOUTS / BURST) }, () =>
      Math.floor(BURST_GAP_MS.min + random() * (BURST_GAP_MS.max - BURST_GAP_MS.min)),
    );
    const killTargets = KILL_AT_FINAL.map(() => Math.floor(random() * WORKERS));

    const children: ChildProcess[] = [];
    const output: string[] = [];
    let spawned = 0;
    const spawnWorker = async (): Promise<ChildProcess> => {
      const env = {
        ...process.env,
        ...consumerEnv(harness.config.amqpNamespace, {
          ...SETTINGS,
          TEST_PROVIDER_CALLS_TABLE: table,
          PROVIDER_DELAY_MS: '20',
          PROVIDER_FAULT_RATE: '0.2',
          PROVIDER_SEED: String(SEED + spawned),
          WORKER_CONCURRENCY: '8',
          DATABASE_POOL_MAX: '5',
        }),
      };
      spawned += 1;
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/worker-child.ts'], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      child.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString()));
      await new Promise<void>((resolve, reject) => {
        child.once('exit', (code) =>
          reject(new Error(`worker child exited with ${code}: ${output.join('')}`)),
        );
        child.stdout.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('ready')) resolve();
        });
      });
      return child;
    };
    const exited = (child: ChildProcess) =>
      child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const kill = async (child: ChildProcess) => {
      const done = exited(child);
      child.kill('SIGKILL');
      await done;
    };

    let apiDb: Db | undefined;
    let api: TestApi | undefined;
    try {
      apiDb = openTestDb(8);
      // The API wakes the relays after a create, as in production (the test default is a waker that does not).
      const http = await startTestApi(apiDb, { waker: new NotifyWaker(apiDb, () => undefined) });
      api = http;
      await harness.startRelay();
      const workers: ChildProcess[] = [];
      for (let index = 0; index < WORKERS; index += 1) workers.push(await spawnWorker());

      const finalCount = async () => {
        const counts = await statusCounts(db, client.clientId);
        return (counts.completed ?? 0) + (counts.failed ?? 0) + (counts.cancelled ?? 0);
      };

      // Creates over HTTP, each followed by its operator's PATCH at a random moment (a timer per payout).
      const ids: string[] = new Array<string>(PAYOUTS);
      const answers: OperatorAnswer[] = [];
      const operatorRequests: Array<Promise<void>> = [];
      const operator = async (id: string, plan: Plan) => {
        await sleep(plan.operatorDelayMs);
        try {
          const response = await http.request('PATCH', `/api/payouts/${id}`, {
            key: client.operatorKey,
            json: { status: plan.requested, reason: `race test: the operator asks for ${plan.requested}` },
          });
          answers.push({ id, requested: plan.requested, status: response.status, detail: response.text });
        } catch (error) {
          answers.push({ id, requested: plan.requested, status: 0, detail: String(error) });
        }
      };
      const creating = (async () => {
        for (const [burst, gapMs] of burstGaps.entries()) {
          if (burst > 0) await sleep(gapMs);
          const indexes = Array.from({ length: BURST }, (_, i) => burst * BURST + i).filter(
            (i) => i < PAYOUTS,
          );
          await Promise.all(
            indexes.map(async (index) => {
              const response = await http.request<{ id: string }>('POST', '/api/payouts', {
                key: client.key,
                json: payoutInput({ description: `race ${index}` }),
              });
              expect(response.status, response.text).to.equal(201);
              ids[index] = response.body.id;
              operatorRequests.push(operator(response.body.id, plans[index]!));
            }),
          );
        }
      })();

      // Meanwhile the workers are killed at three points of the run, one at a time, each replaced at once.
      const kills: Array<{ final: number; worker: number }> = [];
      for (const [k, threshold] of KILL_AT_FINAL.entries()) {
        await waitFor(async () => (await finalCount()) >= threshold, {
          timeoutMs: 90_000,
          intervalMs: 25,
          message: async () => `kill ${k + 1}: ${JSON.stringify(await statusCounts(db, client.clientId))}`,
        });
        const target = killTargets[k]!;
        kills.push({ final: await finalCount(), worker: target });
        await kill(workers[target]!);
        workers[target] = await spawnWorker();
      }
      await creating;
      await Promise.all(operatorRequests);

      try {
        await waitUntilFinal(db, client.clientId, { timeoutMs: 120_000 });
      } catch (error) {
        const stuck = await query<{ id: string; status: string; stage: string | null }>(
          db,
          `SELECT id, status, stage FROM payouts WHERE client_id = ? AND status IN ('created', 'processing')`,
          [client.clientId],
        );
        for (const payout of stuck.slice(0, 3)) await dump(payout.id, `not final (${payout.stage})`);
        throw error;
      }
      // A clean stop, so that every call a worker finished is in the table.
      await Promise.all(
        workers.map(async (child) => {
          const done = exited(child);
          child.kill('SIGTERM');
          await Promise.race([done, sleep(15_000).then(() => kill(child))]);
        }),
      );
      const runtimeMs = Date.now() - started;

      // ---- what happened ----
      const unexpected = answers.filter((answer) => answer.status !== 202 && answer.status !== 409);
      expect(
        unexpected.map((answer) => `${answer.id} ${answer.requested}: ${answer.status} ${answer.detail}`),
        'operator requests answered neither 202 nor 409',
      ).to.deep.equal([]);
      expect(answers).to.have.length(PAYOUTS);
      const recorded = new Map(
        answers.filter((answer) => answer.status === 202).map((answer) => [answer.id, answer.requested]),
      );
      const finals = await statusCounts(db, client.clientId);
      const payouts = await query<{ id: string; status: string; failure_code: string | null }>(
        db,
        'SELECT id, status, failure_code FROM payouts WHERE client_id = ?',
        [client.clientId],
      );
      // The provider's ledger, each row under the payout it belongs to (its key, or the payout id it names).
      const ledger = await query<{
        payout: string;
        payout_id: string;
        idempotency_key: string;
        result: string;
      }>(
        db,
        `SELECT p.id AS payout, t.payout_id, t.idempotency_key, t.result FROM provider_transfers t
           JOIN payouts p ON p.id::text = t.idempotency_key OR p.id = t.payout_id WHERE p.client_id = ?`,
        [client.clientId],
      );
      const calls = await query<CallRow>(
        db,
        `SELECT c.payout_id, c.kind, c.started_at, c.ended_at, c.answer, c.pid FROM ${table} c
           JOIN payouts p ON p.id = c.payout_id WHERE p.client_id = ? ORDER BY c.started_at, c.id`,
        [client.clientId],
      );
      const overruled = await query<{ payout_id: string; reason: string }>(
        db,
        `SELECT e.payout_id, e.reason FROM payout_events e JOIN payouts p ON p.id = e.payout_id
          WHERE p.client_id = ? AND e.reason ILIKE '%overruled%' ORDER BY e.id`,
        [client.clientId],
      );
      // How long payouts waited for a worker (created) and were in flight (processing), for tuning the races.
      const timings = await query<Record<string, number>>(
        db,
        `WITH t AS (
           SELECT extract(epoch FROM min(e.at) FILTER (WHERE e.to_status = 'processing')
                                   - min(e.at) FILTER (WHERE e.from_status IS NULL)) * 1000 AS queued,
                  extract(epoch FROM min(e.at) FILTER (WHERE e.to_status IN ('completed', 'failed'))
                                   - min(e.at) FILTER (WHERE e.to_status = 'processing')) * 1000 AS flight
             FROM payout_events e JOIN payouts p ON p.id = e.payout_id
            WHERE p.client_id = ? GROUP BY e.payout_id)
         SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY queued)) AS queued_p50,
                round(percentile_cont(0.9) WITHIN GROUP (ORDER BY queued)) AS queued_p90,
                round(percentile_cont(0.5) WITHIN GROUP (ORDER BY flight)) AS flight_p50,
                round(percentile_cont(0.9) WITHIN GROUP (ORDER BY flight)) AS flight_p90
           FROM t`,
        [client.clientId],
      );
      // Commands a worker took on itself (delay 0, leased) that the relay published after their lease ran out.
      const republished = await query<{ count: string }>(
        db,
        `SELECT count(*) AS count FROM outbox o JOIN payouts p ON p.id = o.payout_id
          WHERE p.client_id = ? AND o.attempts > 0 AND o.payload->'command'->>'type' <> 'process'
            AND (o.payload->'command'->>'delay_ms')::int = 0`,
        [client.clientId],
      );
      const count = <T>(items: readonly T[], key: (item: T) => string) =>
        items.reduce<Record<string, number>>((acc, item) => {
          acc[key(item)] = (acc[key(item)] ?? 0) + 1;
          return acc;
        }, {});
      const ledgerOf = new Map<string, Array<(typeof ledger)[number]>>();
      for (const row of ledger) ledgerOf.set(row.payout, [...(ledgerOf.get(row.payout) ?? []), row]);
      const callsOf = new Map<string, CallRow[]>();
      for (const call of calls) callsOf.set(call.payout_id, [...(callsOf.get(call.payout_id) ?? []), call]);
      const summary = {
        runtimeMs,
        operator: count(answers, (answer) => `${answer.status} ${answer.requested}`),
        finals,
        failureCodes: count(
          payouts.filter((payout) => payout.status === 'failed'),
          (payout) => payout.failure_code ?? '?',
        ),
        overruled: overruled.length,
        calls: count(calls, (call) => `${call.kind} ${call.answer}`),
        callsByKind: count(calls, (call) => call.kind),
        kills,
        republishedAfterLease: Number(republished[0]!.count),
        // Signs of work cut off by a kill: a payout's effect answered more than once (the provider's first
        // result, to a repeated call), or a ledger row whose call no worker lived to record.
        answeredTwice: [...callsOf.values()].filter(
          (list) => list.filter((call) => call.answer === 'succeeded' || call.answer === 'failed').length > 1,
        ).length,
        ledgerRowsUnrecorded: ledger.filter(
          (row) =>
            !(callsOf.get(row.payout) ?? []).some(
              (call) => call.answer === 'succeeded' || call.answer === 'failed',
            ),
        ).length,
        timingsMs: timings[0],
        conflicts: count(
          answers.filter((answer) => answer.status === 409),
          (answer) => /"detail":"([^"]*)"/.exec(answer.detail)?.[1]?.slice(0, 60) ?? '?',
        ),
      };
      console.log(`      operator races: ${JSON.stringify(summary)}`);

      const statusOf = new Map(payouts.map((payout) => [payout.id, payout]));

      const violations: Record<string, string[]> = {};
      const violated = (invariant: string, offending: string[]) => {
        violations[invariant] = offending;
      };
      expect(statusOf.size).to.equal(PAYOUTS);
      violated(
        'not final',
        payouts
          .filter((payout) => !['completed', 'failed', 'cancelled'].includes(payout.status))
          .map((p) => p.id),
      );
      // 1. Never failed with a provider payment.
      violated(
        'failed with a payment',
        payouts
          .filter((payout) => payout.status === 'failed')
          .filter((payout) => (ledgerOf.get(payout.id) ?? []).some((row) => row.result === 'succeeded'))
          .map((payout) => payout.id),
      );
      // 2. Never completed without exactly one payment.
      violated(
        'completed without exactly one payment',
        payouts
          .filter((payout) => payout.status === 'completed')
          .filter(
            (payout) =>
              (ledgerOf.get(payout.id) ?? []).filter((row) => row.result === 'succeeded').length !== 1,
          )
          .map((payout) => payout.id),
      );
      // 3. Never two submits' effects: at most one ledger row per payout, under the payout's own key; no submit
      // started after a void that answered (the key was closed); every answer of a payout's calls is its one
      // ledger row's result, so a failed payout has no `succeeded` answer anywhere.
      violated(
        'more than one ledger row, or one under another key',
        [...ledgerOf]
          .filter(
            ([id, rows]) =>
              rows.length > 1 || rows.some((row) => row.idempotency_key !== id || row.payout_id !== id),
          )
          .map(([id]) => id),
      );
      violated(
        'submit started after a void answered',
        [...callsOf]
          .filter(([, list]) => {
            const closed = list
              .filter(
                (call) => call.kind === 'void' && (call.answer === 'failed' || call.answer === 'succeeded'),
              )
              .map((call) => call.ended_at.getTime());
            if (closed.length === 0) return false;
            const closedAt = Math.min(...closed);
            return list.some((call) => call.kind === 'submit' && call.started_at.getTime() > closedAt);
          })
          .map(([id]) => id),
      );
      violated(
        'an answer that is not the ledger row',
        [...callsOf]
          .filter(([id, list]) => {
            const rows = ledgerOf.get(id) ?? [];
            return list.some(
              (call) =>
                (call.answer === 'succeeded' || call.answer === 'failed') &&
                (rows.length !== 1 || rows[0]!.result !== call.answer),
            );
          })
          .map(([id]) => id),
      );
      violated(
        'failed with a succeeded answer',
        payouts
          .filter((payout) => payout.status === 'failed')
          .filter((payout) => (callsOf.get(payout.id) ?? []).some((call) => call.answer === 'succeeded'))
          .map((payout) => payout.id),
      );
      // 4. The operator's outcome: `operator_failed` only after a recorded request to fail; an overruled request
      // only after a recorded request of that kind; a recorded request to fail ends `operator_failed` or overruled.
      violated(
        'operator_failed without a recorded request to fail',
        payouts
          .filter((payout) => payout.status === 'failed' && payout.failure_code === 'operator_failed')
          .filter((payout) => recorded.get(payout.id) !== 'failed')
          .map((payout) => payout.id),
      );
      violated(
        'overruled without a recorded request of that kind',
        overruled
          .filter((row) => {
            const requested = /request to (\w+)/.exec(row.reason)?.[1];
            const expected =
              requested === 'fail' ? 'failed' : requested === 'succeed' ? 'completed' : undefined;
            return expected === undefined || recorded.get(row.payout_id) !== expected;
          })
          .map((row) => row.payout_id),
      );
      const overruledIds = new Set(overruled.map((row) => row.payout_id));
      violated(
        'a recorded request to fail neither carried out nor overruled',
        [...recorded]
          .filter(([, requested]) => requested === 'failed')
          .filter(([id]) => {
            const payout = statusOf.get(id)!;
            if (payout.status === 'failed') return payout.failure_code !== 'operator_failed';
            return !(payout.status === 'completed' && overruledIds.has(id));
          })
          .map(([id]) => id),
      );

      const offending = Object.entries(violations).filter(([, list]) => list.length > 0);
      for (const [invariant, list] of offending) await dump(list[0]!, invariant);
      expect(
        Object.fromEntries(offending.map(([invariant, list]) => [invariant, list])),
        'invariants violated (invariant → offending payout ids)',
      ).to.deep.equal({});

      // The run exercised the races: both requests recorded, carried out and overruled, kills mid-run.
      expect(summary.operator['202 failed'] ?? 0, '202s for failed').to.be.greaterThan(0);
      expect(summary.operator['202 completed'] ?? 0, '202s for completed').to.be.greaterThan(0);
      expect(summary.failureCodes.operator_failed ?? 0, 'operator_failed payouts').to.be.greaterThan(0);
      expect(overruled.length, 'overruled rows').to.be.greaterThan(0);
      expect(
        kills.every((k) => k.final < PAYOUTS),
        'every kill mid-run',
      ).to.equal(true);
      expect(ids.filter((id) => typeof id === 'string')).to.have.length(PAYOUTS);
    } finally {
      for (const child of children)
        if (child.exitCode === null && child.signalCode === null) await kill(child);
      await api?.close();
      await apiDb?.destroy();
      await db.raw(`DROP TABLE IF EXISTS ${table}`);
    }

    /** Prints the history, recorded calls and ledger rows of one payout, for the report of a violation. */
    async function dump(id: string, why: string): Promise<void> {
      const events = await query(
        db,
        `SELECT id, from_status, to_status, event, actor_role, reason, request_id, at FROM payout_events
          WHERE payout_id = ? ORDER BY id`,
        [id],
      );
      const payout = await query(
        db,
        'SELECT status, stage, failure_code, failure_message, snapshot FROM payouts WHERE id = ?',
        [id],
      );
      const callRows = await query(
        db,
        `SELECT kind, started_at, ended_at, answer, pid FROM ${table} WHERE payout_id = ? ORDER BY started_at, id`,
        [id],
      );
      const transfers = await query(db, 'SELECT * FROM provider_transfers WHERE payout_id = ?', [id]);
      console.log(
        `      ${why}: payout ${id}\n${JSON.stringify({ payout, events, calls: callRows, transfers }, null, 2)}`,
      );
    }
  });
});
