/** The roles' operations endpoints and graceful shutdown. */
import { expect } from 'chai';
import { startRelay } from '../../../src/relay/outbox-relay.js';
import { startWorker } from '../../../src/consumers/payout-consumer.js';
import { startSweeper } from '../../../src/sweeper/sweeper.js';
import {
  completedCount,
  createPayouts,
  statusCounts,
  useConsumerHarness,
  waitFor,
  waitUntilFinal,
} from '../../support/consumers.js';
import { createTestClient } from '../../support/fixtures.js';

describe('consumers: operations', function () {
  this.timeout(60_000);
  const harness = useConsumerHarness();

  it('serves /metrics, /healthz and /readyz, and answers 503 problem+json while the broker is away', async () => {
    const proxy = await harness.brokerProxy();
    const worker = await harness.startWorker({ AMQP_URL: proxy.url(harness.config.amqpUrl) });
    const base = `http://127.0.0.1:${worker.opsPort}`;
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200);
    const ready = (await (await fetch(`${base}/readyz`)).json()) as { checks: Record<string, string> };
    expect(ready.checks).to.deep.equal({ database: 'up', broker: 'up' });
    expect((await fetch(`${base}/healthz`)).status).to.equal(200);
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).to.equal(200);
    expect(await metrics.text()).to.contain('payouts_consumer_messages_total');

    await proxy.cut();
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 503);
    const down = await fetch(`${base}/readyz`);
    expect(down.headers.get('content-type')).to.equal('application/problem+json');
    const problem = (await down.json()) as { status: number; checks: Record<string, string> };
    expect(problem.status).to.equal(503);
    expect(problem.checks.broker).to.equal('down');
    expect((await fetch(`${base}/healthz`)).status).to.equal(200);
    expect((await fetch(`${base}/nowhere`)).status).to.equal(404);

    await proxy.restore();
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { timeoutMs: 20_000 });
  });

  it('stops every role gracefully: in-flight work finishes, nothing is left half done', async () => {
    const client = await createTestClient(harness.ctx.db, 'shutdown');
    // Started apart from the harness: this test stops them itself.
    const relay = await startRelay(harness.roleContext());
    const worker = await startWorker(harness.roleContext({ PROVIDER_DELAY_MS: '20' }));
    const sweeper = await startSweeper(harness.roleContext());
    const ids = await createPayouts(harness.ctx, client.principal, 60);
    await waitFor(async () => (await completedCount(harness.ctx.db, client.clientId)) >= 5);
    await Promise.all([worker.stop(), relay.stop(), sweeper.stop()]);
    // Whatever was in flight finished; the rest waits in the queue or the outbox for the next worker.
    const counts = await statusCounts(harness.ctx.db, client.clientId);
    expect(Object.values(counts).reduce((sum, count) => sum + count, 0)).to.equal(ids.length);
    // What any payout left in processing was doing, and what its history says: the message names it on failure.
    const halfDone = await harness.ctx
      .db('payouts as p')
      .where({ 'p.client_id': client.clientId, 'p.status': 'processing' })
      .select(
        'p.stage',
        harness.ctx.db.raw(
          `(SELECT string_agg(e.event, ',' ORDER BY e.id) FROM payout_events e WHERE e.payout_id = p.id) AS events`,
        ),
        harness.ctx.db.raw(`p.snapshot->'context'->'last_error' AS last_error`),
      );
    expect(counts.processing ?? 0, `nothing half done: ${JSON.stringify({ counts, halfDone })}`).to.equal(0);
    expect(counts.completed ?? 0, `some completed: ${JSON.stringify(counts)}`).to.be.at.least(5);

    await harness.startRelay();
    await harness.startWorker();
    await waitUntilFinal(harness.ctx.db, client.clientId);
    expect(await statusCounts(harness.ctx.db, client.clientId)).to.deep.equal({ completed: ids.length });
  });
});
