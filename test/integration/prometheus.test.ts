/**
 * The dashboard and the alerts against a real Prometheus. The API, a relay, a worker and a sweeper run in this
 * process, each with its own registry and ops port as in production; Debian's Prometheus scrapes them every
 * second while a few payouts go through. Then every Grafana panel query (its variables replaced as Grafana would)
 * must evaluate and return data, and every alert expression must evaluate. The hand-written PromQL reader
 * (test/support/promql.ts) checks names offline; this test has Prometheus itself parse and answer.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Connection } from 'rabbitmq-client';
import type { Config } from '../../src/config.js';
import { startWorker } from '../../src/consumers/payout-consumer.js';
import type { RunningApi } from '../../src/http/server.js';
import { startApi } from '../../src/http/server.js';
import type { MetricsRole } from '../../src/metrics.js';
import { createMetrics } from '../../src/metrics.js';
import type { OpsServer, RoleHandle } from '../../src/ops-server.js';
import { startApiOpsServer } from '../../src/ops-server.js';
import { startRelay } from '../../src/relay/outbox-relay.js';
import { startSweeper } from '../../src/sweeper/sweeper.js';
import { startWebhooks } from '../../src/consumers/webhook-consumer.js';
import { webhookDispatcher } from '../../src/roles/parts.js';
import {
  consumerConfig,
  declareTestTopology,
  deleteTestTopology,
  testBroker,
  testNamespace,
  waitFor,
} from '../support/consumers.js';
import type { TestContext as AppContext } from '../support/context.js';
import { createTestContext } from '../support/context.js';
import type { TestClient } from '../support/fixtures.js';
import { IBANS, createTestClient } from '../support/fixtures.js';
import { createLogger } from '../../src/logger.js';
import type { RunningPrometheus } from '../support/prometheus.js';
import { startPrometheus } from '../support/prometheus.js';
import type { NamedQuery } from '../support/promql.js';
import { ALERTS_PATH, DASHBOARD_PATH, readDashboardQueries, readRuleQueries } from '../support/promql.js';

/**
 * A dashboard query as Grafana sends it: the job and instance variables at "All" (any value), the interval
 * variables a duration that covers this short run at a one-second scrape. Any other variable fails the test: it
 * would need a value here too.
 */
function asGrafanaSendsIt(expr: string): string {
  const replaced = expr
    .replace(/\$\{__rate_interval\}|\$__rate_interval/g, '1m')
    .replace(/\$\{__interval\}|\$__interval/g, '15s')
    .replace(/\$\{__range\}|\$__range/g, '1m')
    .replace(/\$\{(job|instance)(:\w+)?\}|\$(job|instance)\b/g, '.*');
  const left = /\$\{?\w+/.exec(replaced);
  if (left) throw new Error(`no value for the Grafana variable ${left[0]} in: ${expr}`);
  return replaced;
}

describe('Prometheus evaluates the dashboard and the alerts against the running roles', function () {
  this.timeout(180_000);
  const log = createLogger({ level: 'silent' });
  let config: Config;
  let broker: Connection;
  let prometheus: RunningPrometheus | undefined;
  let api: RunningApi | undefined;
  let apiOps: OpsServer | undefined;
  const roles: RoleHandle[] = [];
  const contexts: AppContext[] = [];
  let apiCtx: AppContext;
  let client: TestClient;

  /** A role's context as production builds it: its own registry with its own metrics and Node's defaults. */
  function roleContext(role: MetricsRole, overrides: Record<string, string>): AppContext {
    const roleConfig = consumerConfig(config.amqpNamespace, {
      HOST: '127.0.0.1',
      PORT: '0',
      // Nothing of this run is old enough to be re-driven: the sweeper only exports its gauges here.
      STUCK_AFTER_SECONDS: '86400',
      ...overrides,
    });
    const ctx = createTestContext(roleConfig, { log, metrics: createMetrics({ roles: [role] }) });
    contexts.push(ctx);
    return ctx;
  }

  async function createPayout(idempotencyKey: string): Promise<{ status: number; id: string }> {
    const response = await fetch(`http://127.0.0.1:${api!.port}/api/payouts`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${client.key}`,
        'content-type': 'application/json',
        'idempotency-key': idempotencyKey,
      },
      body: JSON.stringify({
        amount: '12.34',
        currency: 'EUR',
        recipient: { type: 'iban', iban: IBANS.DE, holder_name: 'Jane Doe' },
        description: 'Scraped payout',
      }),
    });
    const body = (await response.json()) as { id: string };
    return { status: response.status, id: body.id };
  }

  /** The value of a query that answers one sample (a sum or a count), 0 when it answers none. */
  async function scalar(expr: string): Promise<number> {
    const answer = await prometheus!.query(expr);
    return Number(answer.data?.result[0]?.value?.[1] ?? 0);
  }

  before(async () => {
    config = consumerConfig(testNamespace());
    broker = await testBroker();
    await declareTestTopology(broker, config);

    apiCtx = roleContext('api', { DATABASE_POOL_MAX: '3' });
    api = await startApi(apiCtx);
    apiOps = await startApiOpsServer({ ...apiCtx, config: { ...apiCtx.config, metricsPort: 0 } });
    const relay = await startRelay(roleContext('relay', { DATABASE_POOL_MAX: '2' }));
    roles.push(relay);
    const worker = await startWorker(
      roleContext('worker', { DATABASE_POOL_MAX: '4', WORKER_CONCURRENCY: '4' }),
    );
    roles.push(worker);
    const sweeper = await startSweeper(roleContext('sweeper', { DATABASE_POOL_MAX: '2' }));
    roles.push(sweeper);
    const webhooksCtx = roleContext('webhooks', { DATABASE_POOL_MAX: '2' });
    const webhooks = await startWebhooks({
      ...webhooksCtx,
      dispatcher: webhookDispatcher(webhooksCtx.config, webhooksCtx.webhookStore),
      backlog: webhooksCtx.webhookStore,
    });
    roles.push(webhooks);

    prometheus = await startPrometheus({
      'payouts-api': [apiOps.port],
      'payouts-relay': [relay.opsPort!],
      'payouts-worker': [worker.opsPort!],
      'payouts-sweeper': [sweeper.opsPort!],
      'payouts-webhooks': [webhooks.opsPort!],
    });
    await prometheus.waitForTargets();

    // The workload: three payouts to completed, a replayed create, a read of nobody's payout.
    client = await createTestClient(apiCtx.db, 'prom');
    const keys = [randomUUID(), randomUUID(), randomUUID()];
    const ids: string[] = [];
    for (const key of keys) {
      const created = await createPayout(key);
      expect(created.status).to.equal(201);
      ids.push(created.id);
    }
    expect((await createPayout(keys[0]!)).status).to.equal(201);
    const unknown = await fetch(`http://127.0.0.1:${api.port}/api/payouts/${randomUUID()}`, {
      headers: { authorization: `Bearer ${client.key}` },
    });
    expect(unknown.status).to.equal(404);
    await waitFor(
      async () => {
        const payouts = await Promise.all(ids.map((id) => apiCtx.service.getPayout(client.principal, id)));
        return payouts.every((payout) => payout.status === 'completed');
      },
      { timeoutMs: 60_000, message: 'the payouts never reached completed' },
    );
    // Prometheus has seen the run once its scrapes show every payout published and paid, and a few samples
    // more, so that every rate has two samples since the workload.
    await waitFor(
      async () =>
        (await scalar('sum(payouts_outbox_published_total)')) >= ids.length &&
        (await scalar('sum(payouts_provider_calls_total{outcome="succeeded"})')) >= ids.length &&
        (await scalar('sum(payouts_processing_duration_seconds_count)')) >= ids.length,
      { timeoutMs: 30_000, intervalMs: 250, message: 'Prometheus never scraped the finished workload' },
    );
    await new Promise((resolve) => setTimeout(resolve, 3_000));
  });

  after(async () => {
    await prometheus?.stop();
    await Promise.all(roles.splice(0).map((role) => role.stop()));
    await api?.stop();
    await apiOps?.close();
    await Promise.all(contexts.splice(0).map((ctx) => ctx.db.destroy()));
    if (broker) {
      await deleteTestTopology(broker, config);
      await broker.close();
    }
  });

  /** The queries Prometheus refused, each with its error, and those that found nothing when `data` is asked. */
  async function problems(queries: NamedQuery[], data: boolean): Promise<string[]> {
    const found: string[] = [];
    for (const { source, expr } of queries) {
      const sent = asGrafanaSendsIt(expr);
      const answer = await prometheus!.query(sent);
      if (answer.status !== 'success') found.push(`${source}: ${answer.error} in ${sent}`);
      else if (data && (answer.data?.result.length ?? 0) === 0) found.push(`${source}: no data for ${sent}`);
    }
    return found;
  }

  it('every dashboard query evaluates and returns data', async () => {
    const queries = readDashboardQueries(DASHBOARD_PATH);
    expect(queries.length).to.be.greaterThan(20);
    expect(await problems(queries, true)).to.deep.equal([]);
  });

  it('every alert expression evaluates', async () => {
    const queries = readRuleQueries(ALERTS_PATH);
    expect(queries.length).to.be.greaterThan(5);
    expect(await problems(queries, false)).to.deep.equal([]);
  });

  it('a query Prometheus cannot parse is reported, not passed over', async () => {
    expect(
      await problems(
        [{ source: 'broken', expr: 'sum(rate(payouts_created_total[$__rate_interval])' }],
        false,
      ),
    ).to.have.lengthOf(1);
  });
});
