/**
 * Delivery end to end against a real HTTP receiver started by the test: payouts created through the service, the
 * relay, the worker and the `webhooks` role running on the real PostgreSQL and RabbitMQ, every request the
 * receiver gets verified with the client package's `verifyWebhook`.
 */
import { expect } from 'chai';
import { verifyWebhook } from '../../../client/src/webhooks.js';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient } from '../../support/fixtures.js';
import { createPayouts, useConsumerHarness, waitFor, waitUntilFinal } from '../../support/consumers.js';
import { WebhookReceiver } from '../../support/webhook-receiver.js';

const WEBHOOK_ENV = {
  WEBHOOK_ALLOW_HTTP: 'true',
  WEBHOOK_ALLOW_PRIVATE: 'true',
  WEBHOOK_RETRY_SCHEDULE: '1s,1s,1s,1s,2s,2s',
  WEBHOOK_TIMEOUT_MS: '2000',
  WEBHOOK_CONCURRENCY: '8',
};

interface DeliveryRow {
  event_id: string;
  type: string;
  status: string;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
}

describe('webhooks: delivery', () => {
  const harness = useConsumerHarness({ env: WEBHOOK_ENV, roleEnv: WEBHOOK_ENV });
  const receivers: WebhookReceiver[] = [];
  let client: TestClient;

  before(async () => {
    client = await createTestClient(harness.ctx.db, 'webhooks');
  });
  afterEach(async () => {
    await Promise.all(receivers.splice(0).map((receiver) => receiver.stop()));
  });

  async function receiver(): Promise<WebhookReceiver> {
    const started = await new WebhookReceiver().start();
    receivers.push(started);
    return started;
  }

  async function register(url: string, owner = client, events?: string[]) {
    return harness.ctx.webhooks.createEndpoint(owner.principal, {
      url,
      ...(events ? { events: events as never } : {}),
    });
  }

  async function pipeline(webhooks: Record<string, string> = {}): Promise<void> {
    await harness.startRelay();
    await harness.startWorker();
    await harness.startWebhooks(webhooks);
  }

  async function deliveries(endpointId: string): Promise<DeliveryRow[]> {
    return harness.ctx.db('webhook_deliveries').where({ endpoint_id: endpointId }).orderBy('seq');
  }

  it('delivers every transition of a payout, signed, with the payout at each version', async () => {
    const hooks = await receiver();
    const { endpoint, secret } = await register(hooks.url());
    await pipeline();
    const [id] = await createPayouts(harness.ctx, client.principal, 1);
    await waitUntilFinal(harness.ctx.db, client.clientId);
    await waitFor(() => hooks.eventsOf(id!).length >= 3, { timeoutMs: 20_000, message: 'three events' });

    const events = [];
    for (const { request } of hooks.eventsOf(id!)) {
      expect(request.method).to.equal('POST');
      expect(request.headers['content-type']).to.equal('application/json');
      expect(request.headers['user-agent']).to.match(/^Payouts-Webhooks\//);
      const event = await verifyWebhook(
        request.rawBody,
        request.headers['payouts-signature'] as string,
        secret,
      );
      expect(request.headers['payouts-event-id']).to.equal(event.id);
      events.push(event);
    }
    events.sort((a, b) => a.payout_version - b.payout_version);
    expect(events.map((event) => [event.type, event.payout_version, event.data.object.status])).to.deep.equal(
      [
        ['payout.created', 1, 'created'],
        ['payout.processing', 2, 'processing'],
        ['payout.completed', 3, 'completed'],
      ],
    );
    expect(events[2]!.data.object).to.include({ id, amount: '1250.50', currency: 'EUR', version: 3 });
    expect(events[2]!.data.object.recipient).to.not.have.property('iban');
    for (const event of events) expect(event.id).to.match(/^evt_[0-9a-f]{32}$/);
    const rows = await deliveries(endpoint.id);
    expect(rows.every((row) => row.status === 'delivered' && row.attempts === 1)).to.equal(true);
  });

  it('retries a 500 with the same event id and body, and the receiver sees it delivered once', async () => {
    const hooks = await receiver();
    const { endpoint, secret } = await register(hooks.url(), client, ['payout.created']);
    const firstSeen = new Set<string>();
    hooks.respond = (request) => {
      const eventId = request.headers['payouts-event-id'] as string;
      if (firstSeen.has(eventId)) return { status: 200 };
      firstSeen.add(eventId);
      return { status: 500, body: 'try again' };
    };
    await pipeline();
    await createPayouts(harness.ctx, client.principal, 1);
    await waitFor(async () => (await deliveries(endpoint.id)).some((row) => row.status === 'delivered'), {
      timeoutMs: 20_000,
      message: 'delivered after a retry',
    });
    const [row] = await deliveries(endpoint.id);
    expect(row).to.include({ status: 'delivered', attempts: 2, last_status_code: 200 });
    const requests = hooks.received.filter(
      (request) => request.headers['payouts-event-id'] === row!.event_id,
    );
    expect(requests).to.have.length(2);
    expect(requests[0]!.rawBody).to.equal(requests[1]!.rawBody);
    // The receiver's de-duplication by event id: one event, whatever the attempts.
    const seen = new Map<string, unknown>();
    for (const request of requests) {
      const event = await verifyWebhook(
        request.rawBody,
        request.headers['payouts-signature'] as string,
        secret,
      );
      seen.set(event.id, event);
    }
    expect(seen.size).to.equal(1);
  });

  it('a receiver down for longer than three retries gets every event once it is back', async () => {
    const hooks = await receiver();
    const { endpoint } = await register(hooks.url());
    const port = hooks.port;
    await hooks.stop();
    await pipeline();
    const ids = await createPayouts(harness.ctx, client.principal, 3);
    await waitUntilFinal(harness.ctx.db, client.clientId);
    await waitFor(
      async () => (await deliveries(endpoint.id)).filter((row) => row.attempts >= 4).length >= 9,
      { timeoutMs: 30_000, message: 'four failed attempts of each event' },
    );
    const down = await deliveries(endpoint.id);
    expect(down.every((row) => row.status === 'pending')).to.equal(true);
    expect(down[0]!.last_error).to.match(/ECONNREFUSED/);
    await hooks.start(port);
    await waitFor(async () => (await deliveries(endpoint.id)).every((row) => row.status === 'delivered'), {
      timeoutMs: 30_000,
      message: 'all delivered once the receiver is back',
    });
    for (const id of ids) {
      expect(
        hooks
          .eventsOf(id)
          .map(({ event }) => String(event.type))
          .sort(),
      ).to.deep.equal(['payout.completed', 'payout.created', 'payout.processing']);
    }
  });

  it('signs with both secrets during a rotation, each verifying alone', async () => {
    const hooks = await receiver();
    const { endpoint, secret: oldSecret } = await register(hooks.url(), client, ['payout.created']);
    const { secret: newSecret } = await harness.ctx.webhooks.rotateSecret(client.principal, endpoint.id);
    await pipeline();
    const [id] = await createPayouts(harness.ctx, client.principal, 1);
    await waitFor(() => hooks.eventsOf(id!).length === 1, { timeoutMs: 20_000, message: 'the event' });
    const { request } = hooks.eventsOf(id!)[0]!;
    const header = request.headers['payouts-signature'] as string;
    expect(header.match(/v1=/g)).to.have.length(2);
    await verifyWebhook(request.rawBody, header, oldSecret);
    await verifyWebhook(request.rawBody, header, newSecret);
    let refused: unknown;
    await verifyWebhook(request.rawBody, header, 'whsec_someone-else').catch((error: unknown) => {
      refused = error;
    });
    expect(refused).to.be.an('error');
  });

  it('follows no redirect, and reaches no private address unless allowed (after DNS, on the socket)', async () => {
    const target = await receiver();
    const redirecting = await receiver();
    redirecting.respond = () => ({ status: 307, headers: { location: target.url('/stolen') } });
    const redirect = await register(redirecting.url(), client, ['payout.created']);
    // Registered while private addresses are allowed; the dispatcher below does not allow them.
    const byName = await register(`http://localhost:${target.port}/by-name`, client, ['payout.created']);
    const literal = await register(`http://127.0.0.1:${target.port}/literal`, client, ['payout.created']);
    await harness.startRelay();
    const strict = await harness.startWebhooks({ ...WEBHOOK_ENV, WEBHOOK_ALLOW_PRIVATE: 'false' });
    await createPayouts(harness.ctx, client.principal, 1);
    await waitFor(
      async () =>
        (await deliveries(byName.endpoint.id)).some((row) => row.attempts >= 2) &&
        (await deliveries(literal.endpoint.id)).some((row) => row.attempts >= 2),
      { timeoutMs: 20_000, message: 'private addresses refused twice' },
    );
    expect((await deliveries(byName.endpoint.id))[0]!.last_error).to.match(/localhost resolves to .*private/);
    expect((await deliveries(literal.endpoint.id))[0]!.last_error).to.match(
      /127\.0\.0\.1 is a private address/,
    );
    expect(target.received).to.deep.equal([]);
    expect(redirecting.received).to.deep.equal([]);

    // The redirecting receiver is on 127.0.0.1 too: a role allowing private addresses reaches it — alone, so that
    // the strict role cannot take the redirect's next attempts and spend its schedule.
    await strict.stop();
    await harness.startWebhooks();
    await waitFor(
      async () => (await deliveries(redirect.endpoint.id)).some((row) => row.last_status_code === 307),
      {
        timeoutMs: 20_000,
        message: 'the redirect answered',
      },
    );
    const [row] = await deliveries(redirect.endpoint.id);
    expect(row!.status).to.equal('pending');
    expect(row!.last_status_code).to.equal(307);
    expect(row!.last_error).to.match(/redirect to .*\/stolen not followed/);
    expect(target.received.filter((request) => request.path === '/stolen')).to.deep.equal([]);
  });

  it('a receiver that never answers times out (WEBHOOK_TIMEOUT_MS) and is retried; the payout path never waits', async () => {
    const hooks = await receiver();
    hooks.respond = () => 'hang';
    const { endpoint } = await register(hooks.url(), client, ['payout.created', 'payout.completed']);
    // Attempts hang for 6 s: payouts that waited for even one of them could not complete sooner.
    await pipeline({ ...WEBHOOK_ENV, WEBHOOK_TIMEOUT_MS: '6000' });
    const started = Date.now();
    const ids = await createPayouts(harness.ctx, client.principal, 5);
    await waitFor(
      async () => (await harness.ctx.service.getPayout(client.principal, ids[4]!)).status === 'completed',
      { timeoutMs: 20_000, message: 'payouts completed while the receiver hangs' },
    );
    // The payouts went through while every webhook attempt hung.
    expect(Date.now() - started).to.be.lessThan(6_000);
    await waitFor(async () => (await deliveries(endpoint.id)).some((row) => row.attempts >= 1), {
      timeoutMs: 20_000,
      message: 'a timed-out attempt',
    });
    const timedOut = (await deliveries(endpoint.id)).find((row) => row.attempts >= 1)!;
    expect(timedOut).to.include({
      status: 'pending',
      last_status_code: null,
      last_error: 'no answer within 6000 ms',
    });
  });
});
