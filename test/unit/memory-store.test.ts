/**
 * The in-memory `PayoutStore` keeps the port's contract where the service's tests cannot see it: the version check
 * and deleted payouts, what a settled command withdraws, positions, and the sweeper's clock-driven reads.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { loadConfig } from '../../src/config.js';
import { ValueRejected } from '../../src/domain/errors.js';
import type { Payout } from '../../src/domain/payout.js';
import { PayoutService } from '../../src/domain/payout-service.js';
import type { VersionedChange } from '../../src/domain/ports.js';
import type { Principal } from '../../src/domain/principal.js';
import { workerPrincipal } from '../../src/domain/principal.js';
import { PayoutMessages } from '../../src/messaging/payout-message.js';
import { payoutInput } from '../support/fixtures.js';
import { MemoryPayoutStore } from '../support/memory-store.js';

const clientId = randomUUID();
const client: Principal = { clientId, role: 'client', actor: 'key:client' };
const worker = workerPrincipal(clientId);
const ctx = { requestId: 'req-store' };

describe('MemoryPayoutStore', () => {
  let time: number;
  let store: MemoryPayoutStore;
  let service: PayoutService;

  beforeEach(() => {
    // From the real clock: the service dates new payouts itself (`new Date()`), the store by its clock.
    time = Date.now();
    store = new MemoryPayoutStore(() => new Date(time));
    service = new PayoutService({
      store,
      currencies: loadConfig({}).currencies,
      scheduler: new PayoutMessages(),
    });
  });

  /** Every history row of `id`, oldest first. */
  async function historyOf(id: string) {
    return (await store.history(id, { limit: 1_000 })).entries;
  }

  async function created(): Promise<Payout> {
    const result = await service.createPayout(client, payoutInput(), {
      ...ctx,
      answer: (payout) => ({ status: 201, body: { id: payout.id } }),
    });
    return (await store.find({ clientId, id: result.answer.body.id as string, includeDeleted: true }))!;
  }

  function descriptionChange(
    payout: Payout,
    description: string,
    extra: Partial<VersionedChange> = {},
  ): VersionedChange {
    return {
      clientId: payout.clientId,
      id: payout.id,
      expectedVersion: payout.version,
      changes: { description },
      history: {
        from: payout.status,
        event: 'DESCRIBE',
        actor: 'test',
        actorRole: 'client',
        reason: null,
        requestId: null,
      },
      ...extra,
    };
  }

  it('writes a change only at its expected version and client, bumping version and updatedAt', async () => {
    const payout = await created();
    time += 1000;
    expect(await store.save(descriptionChange({ ...payout, version: 2 }, 'too new'))).to.equal(null);
    expect(await store.save(descriptionChange({ ...payout, clientId: randomUUID() }, 'not theirs'))).to.equal(
      null,
    );
    expect(await historyOf(payout.id)).to.have.length(1);
    const saved = await store.save(descriptionChange(payout, 'mine'));
    expect(saved).to.deep.include({ version: 2, description: 'mine', status: 'created', stage: 'queued' });
    expect(saved!.updatedAt.getTime()).to.equal(time);
    expect(await store.save(descriptionChange(payout, 'stale'))).to.equal(null);
    const history = await historyOf(payout.id);
    expect(history.map((entry) => [entry.from, entry.to, entry.event])).to.deep.equal([
      [null, 'created', 'CREATE'],
      ['created', 'created', 'DESCRIBE'],
    ]);
    expect(history[1]!.at.getTime()).to.equal(time);
  });

  it('never changes a deleted payout, and finds it only when asked to include deleted ones', async () => {
    const payout = await created();
    await service.deletePayout(client, payout.id, ctx);
    const deleted = (await store.find({ clientId, id: payout.id, includeDeleted: true }))!;
    expect(deleted).to.deep.include({ status: 'cancelled', version: 2 });
    expect(await store.find({ clientId, id: payout.id, includeDeleted: false })).to.equal(null);
    expect(await store.save(descriptionChange(deleted, 'after deletion'))).to.equal(null);
    expect(await historyOf(payout.id)).to.have.length(2);
  });

  it('withdraws the waiting messages of the settled command, never the change’s own', async () => {
    const payout = await created();
    const resend = new PayoutMessages().messageFor({
      payoutId: payout.id,
      clientId,
      requestId: null,
      command: { seq: 1, type: 'process', try: 1, delay_ms: 0 },
    });
    await store.save(descriptionChange(payout, 'x', { settledSeq: 1, commands: [resend] }));
    expect(store.messages.map((m) => [m.commandSeq, m.withdrawn])).to.deep.equal([
      [1, true],
      [1, false],
    ]);
  });

  it('saveLocked: null for an unknown payout; a refused prepare or write writes nothing', async () => {
    const payout = await created();
    const read = { clientId, id: payout.id, includeDeleted: false };
    expect(
      await store.saveLocked({ ...read, id: randomUUID() }, () => descriptionChange(payout, 'x')),
    ).to.equal(null);
    const refused = await store
      .saveLocked(read, () => {
        throw new Error('refused');
      })
      .catch((error: Error) => error.message);
    expect(refused).to.equal('refused');
    const stale = await store
      .saveLocked(read, (current) => descriptionChange({ ...current, version: 7 }, 'not at its version'))
      .catch((error: Error) => error.message);
    expect(stale).to.match(/changed while locked/);
    expect(await historyOf(payout.id)).to.have.length(1);
    expect(
      (await store.saveLocked(read, (current) => descriptionChange(current, 'locked')))!.version,
    ).to.equal(2);
  });

  it('pages by position and dates; refuses a position that is not one', async () => {
    const first = await created();
    time += 1000;
    const second = await created();
    const page = await store.list(clientId, { limit: 1 });
    expect(page).to.deep.include({ hasMore: true });
    expect(page.payouts.map((p) => p.id)).to.deep.equal([second.id]);
    const rest = await store.list(clientId, { limit: 1, after: page.last! });
    expect(rest.payouts.map((p) => p.id)).to.deep.equal([first.id]);
    expect(rest.hasMore).to.equal(false);
    const lt = await store.list(clientId, { limit: 5, createdLt: second.createdAt });
    expect(lt.payouts.map((p) => p.id)).to.not.include(second.id);
    const gte = await store.list(clientId, { limit: 5, createdGte: second.createdAt });
    expect(gte.payouts.map((p) => p.id)).to.include(second.id);
    expect(await store.list(randomUUID(), { limit: 5 })).to.deep.equal({
      payouts: [],
      last: null,
      hasMore: false,
    });
    const bad = await store.list(clientId, { limit: 1, after: 'abc' }).catch((error: unknown) => error);
    expect(bad).to.be.instanceOf(ValueRejected);
  });

  it('pages a history by position, oldest first, by event, with its total when asked; refuses a bad position', async () => {
    let payout = await created();
    for (const description of ['a', 'b', 'c'])
      payout = (await store.save(descriptionChange(payout, description)))!;
    await created(); // another payout's rows are not in this one's history
    const first = await store.history(payout.id, { limit: 2 });
    expect(first.entries.map((entry) => entry.event)).to.deep.equal(['CREATE', 'DESCRIBE']);
    expect(first).to.deep.include({ hasMore: true, last: first.entries[1]!.id });
    expect(first).to.not.have.property('total');
    const rest = await store.history(payout.id, { limit: 2, after: first.last! });
    expect(rest.entries.map((entry) => entry.event)).to.deep.equal(['DESCRIBE', 'DESCRIBE']);
    expect(rest.hasMore).to.equal(false);
    expect([...first.entries, ...rest.entries].map((entry) => entry.id)).to.deep.equal(
      (await historyOf(payout.id)).map((entry) => entry.id),
    );
    const described = await store.history(payout.id, { limit: 0, event: 'DESCRIBE', withTotal: true });
    expect(described).to.deep.equal({ entries: [], last: null, hasMore: true, total: 3 });
    expect(await store.history(randomUUID(), { limit: 5, withTotal: true })).to.deep.equal({
      entries: [],
      last: null,
      hasMore: false,
      total: 0,
    });
    const bad = await store.history(payout.id, { limit: 1, after: 'abc' }).catch((error: unknown) => error);
    expect(bad).to.be.instanceOf(ValueRejected);
  });

  it('claims a stuck payout once, only with no message waiting, never one that needs a person', async () => {
    const payout = await created();
    const attention = await created();
    await service.applyEvent(
      worker,
      attention.id,
      { type: 'DEAD_LETTERED', code: 'dead', message: 'gone', at: new Date(time).toISOString() },
      ctx,
    );
    time += 301_000;
    expect(await store.claimStuck(300, 10), 'its message is waiting').to.deep.equal([]);
    store.publish();
    expect(await store.claimStuck(300, 10)).to.deep.equal([{ id: payout.id, clientId, status: 'created' }]);
    expect(await store.claimStuck(300, 10), 'claimed: its clock moved').to.deep.equal([]);
    time += 301_000;
    expect(await store.claimStuck(300, 0)).to.deep.equal([]);
    expect((await store.claimStuck(300, 10)).map((p) => p.id)).to.deep.equal([payout.id]);
  });

  it('counts stuck payouts from their last status change; those that need a person apart', async () => {
    const payout = await created();
    const attention = await created();
    await service.applyEvent(
      worker,
      attention.id,
      { type: 'DEAD_LETTERED', code: 'dead', message: 'gone', at: new Date(time).toISOString() },
      ctx,
    );
    expect(await store.countStuck(300)).to.deep.equal({
      stuck: { created: 0, processing: 0 },
      needsAttention: 1,
    });
    time += 301_000;
    await service.updateDescription(client, payout.id, 'edited', ctx);
    expect(await store.countStuck(300)).to.deep.equal({
      stuck: { created: 1, processing: 0 },
      needsAttention: 1,
    });
    await service.applyEvent(worker, payout.id, { type: 'START' }, ctx);
    expect((await store.countStuck(300)).stuck).to.deep.equal({ created: 0, processing: 0 });
  });

  it('keeps an outcome for its TTL, then forgets it', async () => {
    await service.createPayout(client, payoutInput(), {
      ...ctx,
      idempotencyKey: 'k',
      answer: () => ({ status: 201, body: { n: 1 } }),
    });
    time += 2 * 3_600_000;
    expect(await store.findOutcome(clientId, 'k', 3)).to.deep.include({ status: 201, body: { n: 1 } });
    expect(await store.findOutcome(clientId, 'k', 1)).to.equal(null);
    expect(await store.deleteExpiredOutcomes(3)).to.equal(0);
    expect(await store.deleteExpiredOutcomes(1)).to.equal(1);
    expect(await store.findOutcome(clientId, 'k', 3)).to.equal(null);
  });
});
