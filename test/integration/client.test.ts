/**
 * The typed client (the package in client/, imported from its source) against the running app: `startApi` on a
 * free port, every call through `createPayoutsClient`, every response also checked against openapi.yaml by the
 * fetch the client is given. `make client-pack` checks the same package as a consumer installs it.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { CreatePayoutRequest, PayoutsClient } from '../../client/src/index.js';
import { PayoutsApiError, createPayoutsClient } from '../../client/src/index.js';
import { loadConfig } from '../../src/config.js';
import type { TestContext as AppContext } from '../support/context.js';
import { createTestContext as createContext } from '../support/context.js';
import type { RunningApi } from '../../src/http/server.js';
import { startApi } from '../../src/http/server.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { testDatabaseUrl } from '../support/database.js';
import type { TestClient } from '../support/fixtures.js';
import { BAD_CHECKSUM_IBAN, IBANS, createTestClient, payoutInput } from '../support/fixtures.js';
import { contract } from '../support/http.js';

/** The fixtures' valid create body, typed as the client takes it. */
function payoutBody(overrides: Partial<CreatePayoutRequest> = {}): CreatePayoutRequest {
  return { ...(payoutInput() as CreatePayoutRequest), ...overrides };
}

/** The global fetch, plus the contract check of every response the client receives. */
async function contractCheckedFetch(request: Request): Promise<Response> {
  const response = await fetch(request);
  const text = await response.clone().text();
  const mediaType = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
  const json = mediaType === 'application/json' || mediaType.endsWith('+json');
  contract().check(request.method, request.url, {
    status: response.status,
    headers: response.headers,
    text,
    body: json && text !== '' ? JSON.parse(text) : text,
  });
  return response;
}

/** The error a call rejects with; fails the test when it resolves or rejects with something else. */
async function apiError(call: Promise<unknown>): Promise<PayoutsApiError> {
  try {
    await call;
  } catch (error) {
    expect(error).to.be.instanceOf(PayoutsApiError);
    return error as PayoutsApiError;
  }
  return expect.fail('expected the call to fail with a problem document');
}

describe('typed client against the running app', () => {
  let ctx: AppContext;
  let api: RunningApi;
  let baseUrl: string;
  let owner: TestClient;
  let payouts: PayoutsClient;

  before(async () => {
    const config = loadConfig({
      DATABASE_URL: testDatabaseUrl(),
      DATABASE_POOL_MAX: '3',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'silent',
    });
    ctx = createContext(config, {
      log: createLogger({ level: 'silent' }),
      metrics: createMetrics({ defaults: false }),
    });
    api = await startApi(ctx);
    baseUrl = `http://127.0.0.1:${api.port}`;
  });

  after(async () => {
    await api?.stop();
    await ctx?.db.destroy();
  });

  beforeEach(async () => {
    owner = await createTestClient(ctx.db, 'client-sdk');
    payouts = createPayoutsClient({ baseUrl, apiKey: owner.key, fetch: contractCheckedFetch });
  });

  it('creates a payout with an idempotency key; a retry with the same key returns the same payout', async () => {
    const idempotencyKey = randomUUID();
    const body = payoutBody({ amount: '99.5' });
    const created = await payouts.createPayout(body, { idempotencyKey, requestId: 'sdk-create-1' });
    expect(created).to.include({ amount: '99.50', currency: 'EUR', status: 'created', version: 1 });
    // `type` is typed as the wire value 'iban' (the generated schema alone would say 'MaskedIbanRecipient').
    const iban: 'iban' = created.recipient.type;
    expect(iban).to.equal('iban');
    expect(created.recipient).to.include({ iban_last4: IBANS.DE.slice(-4) });
    expect(JSON.stringify(created)).to.not.include(IBANS.DE);

    const replayed = await payouts.createPayout(body, { idempotencyKey });
    expect(replayed).to.deep.equal(created);
    const page = await payouts.listPayouts({ limit: 100 });
    expect(page.data.map((payout) => payout.id)).to.deep.equal([created.id]);
  });

  it('reads, changes, lists and reads the history of a payout', async () => {
    const created = await payouts.createPayout(payoutBody(), {
      idempotencyKey: randomUUID(),
      requestId: 'sdk-create-2',
    });
    const read = await payouts.getPayout(created.id);
    expect(read).to.deep.equal(created);

    const changed = await payouts.updatePayout(
      created.id,
      { description: 'Invoice 43' },
      { ifMatch: read.version, requestId: 'sdk-describe-2' },
    );
    expect(changed).to.include({ description: 'Invoice 43', version: 2 });

    const other = await payouts.createPayout(payoutBody({ currency: 'USD' }), {
      idempotencyKey: randomUUID(),
    });
    const euros = await payouts.listPayouts({ currency: 'EUR', status: 'created', limit: 10 });
    expect(euros.data.map((payout) => payout.id)).to.deep.equal([created.id]);
    expect(euros.next_cursor).to.equal(null);
    const first = await payouts.listPayouts({ limit: 1 });
    expect(first.data.map((payout) => payout.id)).to.deep.equal([other.id]);
    const second = await payouts.listPayouts({ limit: 1, cursor: first.next_cursor! });
    expect(second.data.map((payout) => payout.id)).to.deep.equal([created.id]);

    const events = await payouts.listPayoutEvents(created.id);
    expect(events.next_cursor).to.equal(null);
    expect(events.data.map((event) => [event.from, event.to, event.event, event.request_id])).to.deep.equal([
      [null, 'created', 'CREATE', 'sdk-create-2'],
      ['created', 'created', 'DESCRIBE', 'sdk-describe-2'],
    ]);
    const oldest = await payouts.listPayoutEvents(created.id, { limit: 1 });
    expect(oldest.data.map((event) => event.event)).to.deep.equal(['CREATE']);
    const newer = await payouts.listPayoutEvents(created.id, { limit: 1, cursor: oldest.next_cursor! });
    expect(newer.data.map((event) => event.event)).to.deep.equal(['DESCRIBE']);
    expect(newer.next_cursor).to.equal(null);
  });

  it('cancels a payout (DELETE); it then reads as a 404 problem', async () => {
    const created = await payouts.createPayout(payoutBody(), { idempotencyKey: randomUUID() });
    await payouts.cancelPayout(created.id, { requestId: 'sdk-cancel-3' });

    const notFound = await apiError(payouts.getPayout(created.id, { requestId: 'sdk-read-3' }));
    expect(notFound.status).to.equal(404);
    expect(notFound.code).to.equal('payout_not_found');
    expect(notFound.problem).to.include({ status: 404, request_id: 'sdk-read-3' });
    expect(notFound.requestId).to.equal('sdk-read-3');
    expect((await apiError(payouts.listPayoutEvents(created.id))).code).to.equal('payout_not_found');
    expect((await apiError(payouts.cancelPayout(created.id))).status).to.equal(404);
    expect((await payouts.listPayouts()).data).to.deep.equal([]);
  });

  it('lets an operator retry a payout that needs attention, as a 202 the client returns as the payout', async () => {
    const created = await payouts.createPayout(payoutBody());
    const worker = { clientId: owner.clientId, role: 'worker' as const, actor: 'worker' };
    await ctx.service.applyEvent(worker, created.id, { type: 'START' }, { requestId: null });
    await ctx.service.applyEvent(
      worker,
      created.id,
      { type: 'DEAD_LETTERED', code: 'processing_error', message: 'boom', at: new Date().toISOString() },
      { requestId: null },
    );
    const operator = createPayoutsClient({ baseUrl, apiKey: owner.operatorKey, fetch: contractCheckedFetch });
    const waiting = await operator.getPayout(created.id);
    expect(waiting).to.include({ status: 'processing', stage: 'needs_attention' });
    const retried = await operator.retryPayout(created.id, 'the provider is back', {
      ifMatch: waiting.version,
    });
    expect(retried).to.include({ status: 'processing', stage: 'submitting', version: waiting.version + 1 });
    const refused = await payouts
      .retryPayout(created.id, 'a client may not')
      .catch((error: unknown) => error);
    expect(refused).to.be.instanceOf(PayoutsApiError);
    expect((refused as PayoutsApiError).status).to.equal(403);
  });

  it('turns every error response into a PayoutsApiError carrying the problem document', async () => {
    const invalid = await apiError(
      payouts.createPayout(
        payoutBody({
          amount: '1,5',
          recipient: { type: 'iban', iban: BAD_CHECKSUM_IBAN, holder_name: 'Jane Doe' },
        }),
        { idempotencyKey: randomUUID() },
      ),
    );
    expect(invalid.status).to.equal(400);
    expect(invalid.code).to.equal('validation_failed');
    expect(invalid.problem.errors?.map((error) => error.pointer)).to.have.members([
      '/body/amount',
      '/body/recipient/iban',
    ]);
    // The problem's message names the status and code, never the request's data or the key.
    expect(invalid.message).to.match(/^400 validation_failed: /);
    expect(invalid.message).to.not.include(owner.key);

    const created = await payouts.createPayout(payoutBody(), { idempotencyKey: randomUUID() });
    await payouts.updatePayout(created.id, { description: 'changed' }, { ifMatch: created.version });
    const stale = await apiError(
      payouts.updatePayout(created.id, { description: 'lost update' }, { ifMatch: created.version }),
    );
    expect(stale.status).to.equal(412);
    expect(stale.problem).to.include({ code: 'version_mismatch', current_version: 2 });

    const refused = await apiError(
      payouts.updatePayout(created.id, { status: 'completed', reason: 'not mine to decide' }),
    );
    expect(refused.status).to.equal(403);

    const stranger = createPayoutsClient({
      baseUrl,
      apiKey: `pk_live_${randomUUID()}`,
      fetch: contractCheckedFetch,
    });
    const unauthenticated = await apiError(stranger.getPayout(created.id));
    expect(unauthenticated.status).to.equal(401);
    expect(unauthenticated.code).to.equal('unauthenticated');

    // Another client's payout is not found, exactly like an unknown id.
    const neighbour = await createTestClient(ctx.db, 'client-sdk-other');
    const theirs = createPayoutsClient({ baseUrl, apiKey: neighbour.key, fetch: contractCheckedFetch });
    expect((await apiError(theirs.getPayout(created.id))).code).to.equal('payout_not_found');
  });

  it('manages webhook endpoints and reads their delivery log', async () => {
    const created = await payouts.createWebhookEndpoint({
      url: 'https://hooks.example.com/sdk',
      events: ['payout.created'],
    });
    expect(created.secret).to.match(/^whsec_/);
    expect((await payouts.listWebhookEndpoints()).data.map((endpoint) => endpoint.id)).to.deep.equal([
      created.id,
    ]);
    const changed = await payouts.updateWebhookEndpoint(created.id, { description: 'sdk' });
    expect(changed.description).to.equal('sdk');
    expect((await payouts.getWebhookEndpoint(created.id)).description).to.equal('sdk');
    const rotated = await payouts.rotateWebhookEndpointSecret(created.id);
    expect(rotated.secret).to.not.equal(created.secret);
    const payout = await payouts.createPayout(payoutBody({ amount: '5.00' }));
    const log = await payouts.listWebhookDeliveries(created.id, { payout_id: payout.id });
    expect(log.data.map((delivery) => [delivery.type, delivery.payout_version])).to.deep.equal([
      ['payout.created', 1],
    ]);
    const queued = await payouts.redeliverWebhookDelivery(log.data[0]!.id);
    expect(queued.status).to.equal('pending');
    await payouts.deleteWebhookEndpoint(created.id);
    expect((await apiError(payouts.getWebhookEndpoint(created.id))).code).to.equal(
      'webhook_endpoint_not_found',
    );
  });

  it('uses the global fetch when none is given', async () => {
    const plain = createPayoutsClient({ baseUrl: `${baseUrl}/`, apiKey: owner.key });
    const created = await plain.createPayout(payoutBody({ currency: 'JPY', amount: '1250' }));
    expect((await plain.getPayout(created.id)).amount).to.equal('1250');
  });
});
