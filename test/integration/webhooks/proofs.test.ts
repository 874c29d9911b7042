/**
 * The webhooks' guarantees under stress, against a real receiver: a dispatcher SIGKILLed in the middle of a
 * delivery delivers after its restart; 1,000 payouts taken to their end with transient provider faults (retries,
 * lost races) yield exactly one event per status change that was written, every one delivered, none for a change
 * that was rolled back.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { expect } from 'chai';
import { verifyWebhook } from '../../../client/src/webhooks.js';
import { createTestClient } from '../../support/fixtures.js';
import {
  consumerEnv,
  createPayouts,
  query,
  useConsumerHarness,
  waitFor,
  waitUntilFinal,
} from '../../support/consumers.js';
import { WebhookReceiver } from '../../support/webhook-receiver.js';

const ENV = {
  WEBHOOK_ALLOW_HTTP: 'true',
  WEBHOOK_ALLOW_PRIVATE: 'true',
  WEBHOOK_RETRY_SCHEDULE: '1s,1s,2s,3s,5s',
  WEBHOOK_CONCURRENCY: '16',
};

describe('webhooks: proofs', () => {
  const harness = useConsumerHarness({ env: ENV, roleEnv: ENV });
  const receivers: WebhookReceiver[] = [];

  afterEach(async () => {
    await Promise.all(receivers.splice(0).map((receiver) => receiver.stop()));
  });

  it('a dispatcher SIGKILLed mid-delivery: the event is delivered after the restart', async function () {
    this.timeout(120_000);
    const client = await createTestClient(harness.ctx.db, 'webhooks-kill');
    const hooks = await new WebhookReceiver().start();
    receivers.push(hooks);
    // The first request hangs: the dispatcher is in the middle of it when it is killed.
    hooks.respond = (_request, count) => (count === 1 ? 'hang' : { status: 200 });
    const { endpoint, secret } = await harness.ctx.webhooks.createEndpoint(client.principal, {
      url: hooks.url(),
      events: ['payout.created'],
    });
    const env = {
      ...process.env,
      ...consumerEnv(harness.config.amqpNamespace, {
        ...ENV,
        WEBHOOK_TIMEOUT_MS: '60000',
        DATABASE_POOL_MAX: '3',
      }),
    };
    const children: ChildProcess[] = [];
    const spawnDispatcher = async (): Promise<ChildProcess> => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/webhooks-child.ts'], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      const output: string[] = [];
      child.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString()));
      await new Promise<void>((resolve, reject) => {
        child.once('exit', (code) =>
          reject(new Error(`webhooks child exited with ${code}: ${output.join('')}`)),
        );
        child.stdout.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('ready')) resolve();
        });
      });
      return child;
    };
    try {
      await harness.startRelay();
      const first = await spawnDispatcher();
      const [id] = await createPayouts(harness.ctx, client.principal, 1);
      await waitFor(() => hooks.received.length === 1, {
        timeoutMs: 20_000,
        message: 'the first attempt began',
      });
      const exited = new Promise((resolve) => first.once('exit', resolve));
      first.kill('SIGKILL');
      await exited;
      const [row] = await query<{ status: string; attempts: number }>(
        harness.ctx.db,
        'SELECT status, attempts FROM webhook_deliveries WHERE endpoint_id = ?',
        [endpoint.id],
      );
      expect(row).to.deep.equal({ status: 'pending', attempts: 0 });

      const second = await spawnDispatcher();
      await waitFor(
        async () =>
          (
            await query<{ status: string }>(
              harness.ctx.db,
              'SELECT status FROM webhook_deliveries WHERE endpoint_id = ?',
              [endpoint.id],
            )
          )[0]!.status === 'delivered',
        { timeoutMs: 30_000, message: 'delivered after the restart' },
      );
      const requests = hooks.eventsOf(id!);
      expect(requests).to.have.length(2);
      expect(requests[0]!.request.rawBody).to.equal(requests[1]!.request.rawBody);
      const event = await verifyWebhook(
        requests[1]!.request.rawBody,
        requests[1]!.request.headers['payouts-signature'] as string,
        secret,
      );
      expect(event.type).to.equal('payout.created');
      second.kill('SIGTERM');
      await new Promise((resolve) => second.once('exit', resolve));
    } finally {
      for (const child of children)
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('1,000 payouts to their end: one event per written status change, all delivered, none for a rolled-back one', async function () {
    this.timeout(300_000);
    const client = await createTestClient(harness.ctx.db, 'webhooks-1000');
    const hooks = await new WebhookReceiver().start();
    receivers.push(hooks);
    const { secret } = await harness.ctx.webhooks.createEndpoint(client.principal, { url: hooks.url() });
    const faults = { PROVIDER_FAULT_RATE: '0.2', PROVIDER_SEED: '7' };
    await harness.startRelay();
    await harness.startWorker({ ...faults, WORKER_CONCURRENCY: '32' });
    await harness.startWorker({ ...faults, WORKER_CONCURRENCY: '32' });
    await harness.startWebhooks();
    const ids = await createPayouts(harness.ctx, client.principal, 1000, undefined, 8);
    await waitUntilFinal(harness.ctx.db, client.clientId, { timeoutMs: 180_000 });

    // What was written: each status change of each payout, in its history (same statement as the event).
    const changes = await query<{ payout_id: string; to_status: string; n: string }>(
      harness.ctx.db,
      `SELECT e.payout_id, e.to_status, count(*) AS n FROM payout_events e JOIN payouts p ON p.id = e.payout_id
        WHERE p.client_id = ? AND e.from_status IS DISTINCT FROM e.to_status
        GROUP BY e.payout_id, e.to_status`,
      [client.clientId],
    );
    const expected = new Set(changes.map((row) => `${row.payout_id} payout.${row.to_status}`));
    expect(changes.every((row) => Number(row.n) === 1)).to.equal(true);
    expect(expected.size).to.be.greaterThanOrEqual(3000);

    const written = await query<{ payout_id: string; type: string; event_id: string }>(
      harness.ctx.db,
      'SELECT payout_id, type, event_id FROM webhook_deliveries WHERE client_id = ?',
      [client.clientId],
    );
    expect(written.map((row) => `${row.payout_id} ${row.type}`).sort()).to.deep.equal([...expected].sort());

    await waitFor(
      () => new Set(hooks.received.map((r) => r.headers['payouts-event-id'])).size >= expected.size,
      {
        timeoutMs: 120_000,
        message: () =>
          `${new Set(hooks.received.map((r) => r.headers['payouts-event-id'])).size} of ${expected.size}`,
      },
    );
    const received = new Map<string, string>();
    for (const request of hooks.received) {
      const event = await verifyWebhook(
        request.rawBody,
        request.headers['payouts-signature'] as string,
        secret,
        600,
      );
      received.set(event.id, `${event.data.object.id} ${event.type}`);
      // The payout as it was at the event's version.
      expect(event.data.object.version).to.equal(event.payout_version);
    }
    expect([...received.values()].sort()).to.deep.equal([...expected].sort());
    expect(new Set(written.map((row) => row.event_id))).to.deep.equal(new Set(received.keys()));
    const statuses = await query<{ status: string; n: string }>(
      harness.ctx.db,
      'SELECT status, count(*) AS n FROM webhook_deliveries WHERE client_id = ? GROUP BY status',
      [client.clientId],
    );
    expect(statuses.map((row) => row.status)).to.deep.equal(['delivered']);
    expect(ids).to.have.length(1000);
  });
});
