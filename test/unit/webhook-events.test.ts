/**
 * Which changes become webhook events: the machine's decision (`notification`), written by the service with the
 * change itself — a status entered, or the stage `needs_attention` entered; never a change within a stage, never
 * a refused event.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { loadConfig } from '../../src/config.js';
import { PayoutService } from '../../src/domain/payout-service.js';
import type { Principal } from '../../src/domain/principal.js';
import { systemPrincipal, workerPrincipal } from '../../src/domain/principal.js';
import { notificationOf } from '../../src/machines/payout-lifecycle.js';
import { PayoutMessages } from '../../src/messaging/payout-message.js';
import { payoutInput } from '../support/fixtures.js';
import { MemoryPayoutStore } from '../support/memory-store.js';

const clientId = randomUUID();
const client: Principal = { clientId, role: 'client', actor: 'key:client' };
const operator: Principal = { clientId, role: 'operator', actor: 'key:operator' };
const worker = workerPrincipal(clientId);
const ctx = { requestId: 'req-test' };

function setup() {
  const store = new MemoryPayoutStore();
  const service = new PayoutService({
    store,
    currencies: loadConfig({}).currencies,
    scheduler: new PayoutMessages(),
  });
  return { store, service };
}

async function create(service: PayoutService): Promise<string> {
  const result = await service.createPayout(client, payoutInput(), {
    ...ctx,
    answer: (payout) => ({ status: 201, body: { id: payout.id } }),
  });
  if (result.replayed) throw new Error('replayed');
  return result.payout.id;
}

describe('webhook events of payout changes', () => {
  it('notificationOf: a status entered, else needs_attention entered, else nothing', () => {
    expect(notificationOf(null, { status: 'created', stage: 'queued' })).to.equal('created');
    expect(
      notificationOf({ status: 'created', stage: 'queued' }, { status: 'processing', stage: 'submitting' }),
    ).to.equal('processing');
    expect(
      notificationOf(
        { status: 'processing', stage: 'submitting' },
        { status: 'processing', stage: 'needs_attention' },
      ),
    ).to.equal('needs_attention');
    expect(
      notificationOf(
        { status: 'processing', stage: 'needs_attention' },
        { status: 'processing', stage: 'needs_attention' },
      ),
    ).to.equal(null);
    expect(
      notificationOf(
        { status: 'processing', stage: 'submitting' },
        { status: 'processing', stage: 'confirming' },
      ),
    ).to.equal(null);
    expect(
      notificationOf({ status: 'processing', stage: 'voiding' }, { status: 'completed', stage: null }),
    ).to.equal('completed');
  });

  it('created → processing → completed: three events, each with the version it describes and its own id', async () => {
    const { store, service } = setup();
    const id = await create(service);
    await service.applyEvent(worker, id, { type: 'START' }, ctx);
    await service.applyEvent(worker, id, { type: 'PROVIDER_SUCCEEDED', seq: 2 }, ctx);
    const events = store.webhookEvents.filter((event) => event.payoutId === id);
    expect(events.map((event) => [event.type, event.payoutVersion])).to.deep.equal([
      ['payout.created', 1],
      ['payout.processing', 2],
      ['payout.completed', 3],
    ]);
    expect(new Set(events.map((event) => event.eventId)).size).to.equal(3);
    for (const event of events) expect(event.eventId).to.match(/^evt_[0-9a-f]{32}$/);
  });

  it('a stage change inside a status is no event; entering needs_attention is, once', async () => {
    const { store, service } = setup();
    const id = await create(service);
    await service.applyEvent(worker, id, { type: 'START' }, ctx);
    const at = new Date().toISOString();
    // An unavailability retries the submit (a stage loop): no event.
    await service.applyEvent(
      worker,
      id,
      { type: 'PROVIDER_UNAVAILABLE', seq: 2, message: 'timeout', at },
      ctx,
    );
    await service.applyEvent(worker, id, { type: 'DEAD_LETTERED', code: 'poison', message: 'x', at }, ctx);
    // A second dead letter finds it there already: no second event.
    await service.applyEvent(worker, id, { type: 'DEAD_LETTERED', code: 'poison', message: 'x', at }, ctx);
    await service.retryPayout(operator, id, { ...ctx, reason: 'fixed' });
    const types = store.webhookEvents.filter((event) => event.payoutId === id).map((event) => event.type);
    expect(types).to.deep.equal(['payout.created', 'payout.processing', 'payout.needs_attention']);
  });

  it('a cancel is payout.cancelled; a description change and a refused event are nothing', async () => {
    const { store, service } = setup();
    const id = await create(service);
    await service.updateDescription(client, id, 'new words', ctx);
    await service.applyEvent(
      systemPrincipal(clientId),
      id,
      { type: 'REDRIVE', at: new Date().toISOString() },
      ctx,
    );
    await service.updatePayout(client, id, { status: 'cancelled' }, ctx);
    await service.updatePayout(client, id, { status: 'cancelled' }, ctx).catch(() => undefined);
    const types = store.webhookEvents.filter((event) => event.payoutId === id).map((event) => event.type);
    expect(types).to.deep.equal(['payout.created', 'payout.cancelled']);
  });
});
