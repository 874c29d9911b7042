/**
 * Observability of the running service (issues 5 and 7). The API, a relay, a worker and a sweeper run against
 * the run's database and a namespace of queues of their own, all logging into one in-memory stream. After a
 * client's day — create, read, list, cancel, a bad IBAN, a bogus key, a revoked key, a payout taken to
 * completed by the worker — the test scrapes every process's /metrics over HTTP and reads the captured logs:
 *
 * - each role exports the metrics it writes and no other role's, its labelled counters from 0;
 * - every query of the Grafana dashboard and of the Prometheus alerts names a series (and labels) that the
 *   running processes really export;
 * - no metric label value holds an id, an IBAN or a key;
 * - the logs hold no full IBAN, no API key and no Authorization value, and do hold the request ids.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Connection } from 'rabbitmq-client';
import type { Config } from '../../src/config.js';
import { startRelay } from '../../src/relay/outbox-relay.js';
import { startWorker } from '../../src/consumers/payout-consumer.js';
import type { RoleHandle } from '../../src/ops-server.js';
import { startSweeper } from '../../src/sweeper/sweeper.js';
import { startWebhooks } from '../../src/consumers/webhook-consumer.js';
import { webhookDispatcher } from '../../src/roles/parts.js';
import type { TestContext as AppContext } from '../support/context.js';
import { createTestContext as createContext } from '../support/context.js';
import type { RunningApi } from '../../src/http/server.js';
import { startApi } from '../../src/http/server.js';
import type { OpsServer } from '../../src/ops-server.js';
import { startApiOpsServer } from '../../src/ops-server.js';
import type { Logger } from '../../src/logger.js';
import { createLogger } from '../../src/logger.js';
import type { MetricsRole } from '../../src/metrics.js';
import { METRICS_ROLES, METRIC_OWNERS, createMetrics } from '../../src/metrics.js';
import {
  consumerConfig,
  declareTestTopology,
  deleteTestTopology,
  testBroker,
  testNamespace,
  waitFor,
} from '../support/consumers.js';
import type { TestClient } from '../support/fixtures.js';
import { IBANS, createTestClient, revokeApiKeys } from '../support/fixtures.js';
import { LogCapture } from '../support/logs.js';
import {
  ALERTS_PATH,
  DASHBOARD_PATH,
  readDashboardQueries,
  readRuleQueries,
  unknownReferences,
} from '../support/promql.js';

const DASHBOARD = DASHBOARD_PATH;
const ALERTS = ALERTS_PATH;

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;
/** Anything shaped like an IBAN: country, check digits, 11 to 30 account characters. */
const IBAN_SHAPE = /[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}/i;

/** A valid IBAN as a person types it (lower case, grouped): the API accepts it and stores it normalised. */
const TYPED_IBAN = 'de89 3704 0044 0532 0130 00';
/** Right shape and length, wrong mod-97 checksum: passes the contract, refused by the recipient rules. */
const BAD_CHECKSUM_IBAN = 'GB29NWBK60161331926818';
/** Not even the contract's character set: refused by the schema itself. */
const BAD_CHARACTERS_IBAN = 'FR14-2004-1010-0505-0001-3M02-606';

/** Upper case, letters and digits only: an IBAN is found however it was spaced, dashed or cased. */
function compact(text: string): string {
  return text.toUpperCase().replace(/[^A-Z0-9]/g, '');
}

/** Every label value of every sample line of a Prometheus exposition. */
function labelValues(exposition: string): string[] {
  const values: string[] = [];
  for (const line of exposition.split('\n')) {
    if (line.startsWith('#')) continue;
    const labels = /^[a-zA-Z_:][\w:]*\{(.*)\}\s/.exec(line)?.[1];
    for (const match of (labels ?? '').matchAll(/[a-zA-Z_]\w*="((?:[^"\\]|\\.)*)"/g)) values.push(match[1]!);
  }
  return values;
}

describe('observability: metrics and logs of the running processes', function () {
  this.timeout(120_000);
  const runId = randomBytes(4).toString('hex');
  const requestIds = {
    create: `obs-create-${runId}`,
    read: `obs-read-${runId}`,
    list: `obs-list-${runId}`,
    cancel: `obs-cancel-${runId}`,
    badChecksum: `obs-bad-iban-${runId}`,
    badCharacters: `obs-bad-chars-${runId}`,
    ibanInPath: `obs-iban-in-path-${runId}`,
    ibanInRoute: `obs-iban-in-route-${runId}`,
    bogusKey: `obs-bogus-key-${runId}`,
    revokedBefore: `obs-revoked-before-${runId}`,
    revokedAfter: `obs-revoked-after-${runId}`,
    process: `obs-process-${runId}`,
    events: `obs-events-${runId}`,
  };
  const bogusKey = `pk_live_${randomBytes(32).toString('base64url')}`;

  const capture = new LogCapture();
  let log: Logger;
  let config: Config;
  let broker: Connection;
  let api: RunningApi | undefined;
  let apiOps: OpsServer;
  const roles: RoleHandle[] = [];
  const contexts: AppContext[] = [];
  let apiCtx: AppContext;
  let client: TestClient;
  let revoked: TestClient;
  const payoutIds: string[] = [];
  const scraped: Record<MetricsRole, string> = {
    api: '',
    worker: '',
    relay: '',
    sweeper: '',
    webhooks: '',
  };

  /**
   * A context like production's (the role's own metrics, Node default metrics included) on a small pool, logging
   * into the capture.
   */
  function roleContext(role: MetricsRole, overrides: Record<string, string>): AppContext {
    const roleConfig = consumerConfig(config.amqpNamespace, {
      LOG_LEVEL: 'debug',
      HOST: '127.0.0.1',
      PORT: '0',
      // Nothing of this run is old enough to be re-driven: the sweeper only exports its gauges here.
      STUCK_AFTER_SECONDS: '86400',
      ...overrides,
    });
    const ctx = createContext(roleConfig, { log, metrics: createMetrics({ roles: [role] }) });
    contexts.push(ctx);
    return ctx;
  }

  async function call(
    method: string,
    path: string,
    options: { key?: string; requestId: string; json?: unknown; headers?: Record<string, string> },
  ): Promise<{ status: number; text: string; body: Record<string, unknown> }> {
    const headers: Record<string, string> = { 'x-request-id': options.requestId, ...options.headers };
    if (options.key !== undefined) headers.authorization = `Bearer ${options.key}`;
    if (options.json !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`http://127.0.0.1:${api!.port}${path}`, {
      method,
      headers,
      body: options.json === undefined ? undefined : JSON.stringify(options.json),
    });
    const text = await response.text();
    expect(response.headers.get('x-request-id')).to.equal(options.requestId);
    return { status: response.status, text, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  const payoutBody = (iban: string) => ({
    amount: '310.25',
    currency: 'EUR',
    recipient: { type: 'iban', iban, holder_name: 'Jane Doe' },
    description: 'Observed payout',
  });

  async function scrape(port: number | undefined, what: string): Promise<string> {
    expect(port, `${what} has an ops server`).to.be.a('number');
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(response.status, `${what} /metrics`).to.equal(200);
    return response.text();
  }

  before(async () => {
    log = createLogger({ level: 'debug', destination: capture });
    config = consumerConfig(testNamespace());
    broker = await testBroker();
    await declareTestTopology(broker, config);

    apiCtx = roleContext('api', { DATABASE_POOL_MAX: '3' });
    api = await startApi(apiCtx);
    apiOps = await startApiOpsServer({ ...apiCtx, config: { ...apiCtx.config, metricsPort: 0 } });

    client = await createTestClient(apiCtx.db, 'obs');
    revoked = await createTestClient(apiCtx.db, 'obs-revoked');

    // Create (an IBAN as a person types it), read, list, cancel.
    const created = await call('POST', '/api/payouts', {
      key: client.key,
      requestId: requestIds.create,
      json: payoutBody(TYPED_IBAN),
      headers: { 'idempotency-key': randomUUID() },
    });
    expect(created.status, created.text).to.equal(201);
    const id = created.body.id as string;
    payoutIds.push(id);
    expect(
      (await call('GET', `/api/payouts/${id}`, { key: client.key, requestId: requestIds.read })).status,
    ).to.equal(200);
    const list = await call('GET', '/api/payouts?limit=5', { key: client.key, requestId: requestIds.list });
    expect(list.status).to.equal(200);
    expect(
      (await call('DELETE', `/api/payouts/${id}`, { key: client.key, requestId: requestIds.cancel })).status,
    ).to.equal(204);

    // Bad IBANs: one refused by the recipient rules, one by the contract's schema.
    const badChecksum = await call('POST', '/api/payouts', {
      key: client.key,
      requestId: requestIds.badChecksum,
      json: payoutBody(BAD_CHECKSUM_IBAN),
    });
    expect(badChecksum.status).to.equal(400);
    expect(badChecksum.text).to.include('/body/recipient/iban');
    const badCharacters = await call('POST', '/api/payouts', {
      key: client.key,
      requestId: requestIds.badCharacters,
      json: payoutBody(BAD_CHARACTERS_IBAN),
    });
    expect(badCharacters.status).to.equal(400);
    expect(badCharacters.text).to.include('/body/recipient/iban');

    // Account numbers where ids belong: the access log records the path.
    const inPath = await call('GET', `/api/payouts/${IBANS.NL}`, {
      key: client.key,
      requestId: requestIds.ibanInPath,
    });
    expect(inPath.status).to.equal(400);
    const unknownRoute = await call('GET', `/api/recipients/${IBANS.FR}`, {
      key: client.key,
      requestId: requestIds.ibanInRoute,
    });
    expect(unknownRoute.status).to.equal(404);
    // The problem documents do not echo the account numbers sent in the body either.
    for (const [response, iban] of [
      [badChecksum, BAD_CHECKSUM_IBAN],
      [badCharacters, BAD_CHARACTERS_IBAN],
      [inPath, IBANS.NL],
    ] as const) {
      expect(compact(response.text)).to.not.include(compact(iban));
    }

    // A key nobody issued, and a key that worked until its client was revoked.
    expect(
      (await call('GET', '/api/payouts', { key: bogusKey, requestId: requestIds.bogusKey })).status,
    ).to.equal(401);
    expect(
      (await call('GET', '/api/payouts', { key: revoked.key, requestId: requestIds.revokedBefore })).status,
    ).to.equal(200);
    expect(await revokeApiKeys(apiCtx.db, revoked.name)).to.equal(2);
    expect(
      (await call('GET', '/api/payouts', { key: revoked.key, requestId: requestIds.revokedAfter })).status,
    ).to.equal(401);

    // Only now the pipeline, so that nothing took the cancelled payout first. Its message is acknowledged as
    // already final; the next payout is published by the relay and taken to completed by the worker.
    const relay = await startRelay(roleContext('relay', { DATABASE_POOL_MAX: '2' }));
    roles.push(relay);
    const worker = await startWorker(
      roleContext('worker', { DATABASE_POOL_MAX: '5', WORKER_CONCURRENCY: '4' }),
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
    const processed = await call('POST', '/api/payouts', {
      key: client.key,
      requestId: requestIds.process,
      json: payoutBody(IBANS.GB),
      headers: { 'idempotency-key': randomUUID() },
    });
    expect(processed.status, processed.text).to.equal(201);
    const processedId = processed.body.id as string;
    payoutIds.push(processedId);
    await waitFor(
      async () => (await apiCtx.service.getPayout(client.principal, processedId)).status === 'completed',
      { timeoutMs: 60_000, message: 'the payout never reached completed' },
    );
    const events = await call('GET', `/api/payouts/${processedId}/events`, {
      key: client.key,
      requestId: requestIds.events,
    });
    expect(events.status).to.equal(200);
    // Paths with ids that match no route, and an id that is nobody's: their labels must stay bounded too.
    await call('GET', `/api/payouts/${processedId}/nope`, {
      key: client.key,
      requestId: `obs-unmatched-${runId}`,
    });
    await call('GET', `/api/payouts/${randomUUID()}`, { key: client.key, requestId: `obs-unknown-${runId}` });

    scraped.api = await scrape(apiOps.port, 'api');
    scraped.worker = await scrape(worker.opsPort, 'worker');
    scraped.relay = await scrape(relay.opsPort, 'relay');
    scraped.sweeper = await scrape(sweeper.opsPort, 'sweeper');
    scraped.webhooks = await scrape(webhooks.opsPort, 'webhooks');
  });

  after(async () => {
    await Promise.all(roles.splice(0).map((role) => role.stop()));
    await api?.stop();
    await apiOps?.close();
    await Promise.all(contexts.splice(0).map((ctx) => ctx.db.destroy()));
    if (broker) {
      await deleteTestTopology(broker, config);
      await broker.close();
    }
  });

  const union = () => Object.values(scraped).join('\n');

  describe('metrics', () => {
    it('each process serves what it measured', () => {
      expect(scraped.api).to.match(
        /^http_request_duration_seconds_count\{route="\/api\/payouts\/\{id\}",method="GET",status="200"\} \d+/m,
      );
      expect(scraped.api).to.match(/^payouts_created_total\{currency="EUR"\} [1-9]/m);
      expect(scraped.worker).to.match(/^payouts_provider_calls_total\{outcome="succeeded"\} [1-9]/m);
      expect(scraped.worker).to.match(
        /^payouts_transitions_total\{from="processing",to="completed",event="PROVIDER_SUCCEEDED"\} [1-9]/m,
      );
      expect(scraped.relay).to.match(/^payouts_outbox_published_total [1-9]/m);
      expect(scraped.sweeper).to.match(/^payouts_dlq_depth \d+/m);
      for (const text of Object.values(scraped)) expect(text).to.match(/^process_resident_memory_bytes \d+/m);
    });

    it("each role exports the metrics it writes and none of another role's", () => {
      const names = createMetrics({ defaults: false });
      for (const role of METRICS_ROLES) {
        const declared = new Set([...scraped[role].matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1]!));
        for (const [metric, owners] of Object.entries(METRIC_OWNERS)) {
          const name = (names[metric as keyof typeof METRIC_OWNERS] as unknown as { name: string }).name;
          expect(declared.has(name), `${role} exports ${name}`).to.equal(owners.includes(role));
        }
      }
      // The symptom that started it: only the sweeper knows the dead-letter queue's depth.
      expect(scraped.worker).to.not.include('payouts_dlq_depth');
      expect(scraped.relay).to.not.include('payouts_dlq_depth');
      expect(scraped.api).to.not.match(/payouts_(outbox|dlq)_/);
    });

    it('labelled counters are scraped at 0 before anything happened to them', () => {
      const zero = (text: string, series: string) =>
        expect(text.split('\n'), series).to.include(`${series} 0`);
      zero(
        scraped.api,
        'http_request_duration_seconds_count{route="/api/payouts",method="POST",status="500"}',
      );
      zero(
        scraped.api,
        'http_request_duration_seconds_count{route="/api/payouts/{id}",method="GET",status="500"}',
      );
      zero(scraped.api, 'payouts_idempotency_total{outcome="mismatch"}');
      zero(scraped.api, 'payouts_created_total{currency="JPY"}');
      zero(
        scraped.worker,
        'payouts_consumer_messages_total{outcome="dead_letter",reason="processing_error"}',
      );
      zero(scraped.worker, 'payouts_consumer_messages_total{outcome="retry",reason="version_conflict"}');
      zero(scraped.worker, 'payouts_consumer_redelivered_total{status="failed"}');
      zero(scraped.worker, 'payouts_provider_calls_total{outcome="transient_error"}');
      zero(scraped.sweeper, 'payouts_sweeper_redriven_total{status="created"}');
      zero(scraped.sweeper, 'payouts_sweeper_redriven_total{status="processing"}');
      zero(scraped.webhooks, 'payouts_webhook_deliveries_total{outcome="failed"}');
      zero(scraped.webhooks, 'payouts_webhook_endpoints_disabled_total');
    });

    it('every Grafana dashboard query names series and labels the running processes export', () => {
      const queries = readDashboardQueries(DASHBOARD);
      expect(queries.length).to.be.greaterThan(20);
      expect(unknownReferences(queries, union())).to.deep.equal([]);
    });

    it('every Prometheus alert names series and labels the running processes export', () => {
      const queries = readRuleQueries(ALERTS);
      expect(queries.length).to.be.greaterThan(5);
      expect(unknownReferences(queries, union())).to.deep.equal([]);
    });

    it('no label value holds a payout id, a UUID, an IBAN or an API key', () => {
      const values = labelValues(union());
      expect(values).to.include.members(['/api/payouts/{id}', '/api/payouts/{id}/events', 'unmatched']);
      const secrets = [client.key, client.operatorKey, revoked.key, revoked.operatorKey, bogusKey];
      const offending = values.filter(
        (value) =>
          UUID.test(value) ||
          IBAN_SHAPE.test(compact(value)) ||
          payoutIds.some((id) => value.includes(id)) ||
          secrets.some((key) => value.includes(key)) ||
          value.includes('pk_'),
      );
      expect(offending).to.deep.equal([]);
    });
  });

  describe('logs', () => {
    it('capture the run: every API line and the worker carry the request id', () => {
      const lines = capture.records();
      const requests = lines.filter((line) => line.msg === 'request');
      expect(requests.length).to.be.greaterThan(10);
      for (const line of requests) expect(line.request_id, JSON.stringify(line)).to.be.a('string');
      const seen = new Set(requests.map((line) => line.request_id));
      for (const requestId of Object.values(requestIds)) expect([...seen]).to.include(requestId);
      // The create's request id travels through the outbox and the message to the worker's log line.
      expect(
        lines.some(
          (line) => line.msg === 'payout message processed' && line.request_id === requestIds.process,
        ),
      ).to.equal(true);
    });

    it('hold no full IBAN, valid or not, however it was typed, in a body or in a path', () => {
      const text = compact(capture.text);
      const sent = [
        TYPED_IBAN,
        IBANS.DE,
        IBANS.GB,
        IBANS.NL,
        IBANS.FR,
        BAD_CHECKSUM_IBAN,
        BAD_CHARACTERS_IBAN,
      ];
      for (const iban of sent) {
        expect(text.includes(compact(iban)), `${iban} in the logs`).to.equal(false);
      }
    });

    it('hold no API key and no Authorization header value', () => {
      const text = capture.text;
      for (const key of [client.key, client.operatorKey, revoked.key, revoked.operatorKey, bogusKey]) {
        expect(text.includes(key), 'an API key in the logs').to.equal(false);
        // The secret part alone, in case something logged the key split or re-encoded.
        expect(text.includes(key.replace(/^pk_[a-z]+_/, '')), 'a key secret in the logs').to.equal(false);
      }
      expect(text).to.not.match(/bearer\s+\S/i);
      expect(text).to.not.match(/pk_(live|op)_/);
    });
  });
});
