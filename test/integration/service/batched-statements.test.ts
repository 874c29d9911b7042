import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { CreateResult } from '../../../src/domain/payout-service.js';
import type { Principal } from '../../../src/domain/principal.js';
import { hashApiKey } from '../../../src/domain/api-keys.js';
import { IdempotencyKeyInFlight, Unauthenticated } from '../../../src/domain/errors.js';
import type { TestContext as AppContext } from '../../support/context.js';
import { workerPrincipal } from '../../../src/domain/principal.js';
import type { Payout } from '../../../src/domain/payout.js';
import { Batcher } from '../../../src/persistence/batcher.js';
import type { VersionedChange } from '../../../src/domain/ports.js';
import {
  ROW_LOCKED,
  findPayouts,
  updatePayoutsVersioned,
  updateUnlockedPayoutsVersioned,
} from '../../../src/persistence/payout-repository.js';
import { serviceTestContext } from '../../support/database.js';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient, payoutIn, payoutInput } from '../../support/fixtures.js';

/** A START of `payout` as the worker sends it, written under `version`. */
function start(client: TestClient, id: string, version: number): VersionedChange {
  return {
    clientId: client.clientId,
    id,
    expectedVersion: version,
    changes: { status: 'processing' },
    history: {
      from: 'created',
      event: 'START',
      actor: 'worker',
      actorRole: 'worker',
      reason: null,
      requestId: 'req-batch',
    },
  };
}

describe('batched reads and changes (real PostgreSQL)', () => {
  let ctx: AppContext;
  let client: TestClient;
  let other: TestClient;

  before(async () => {
    ctx = serviceTestContext();
    client = await createTestClient(ctx.db);
    other = await createTestClient(ctx.db);
  });
  after(() => ctx.db.destroy());

  const statusesOf = async (id: string): Promise<string[]> =>
    (await ctx.db('payout_events').where({ payout_id: id }).orderBy('id').select('to_status')).map(
      (row: { to_status: string }) => row.to_status,
    );

  it('reads each payout under its own client, deleted ones only where asked, in the order asked', async () => {
    const [mine, deleted] = [await payoutIn(ctx, client, 'created'), await payoutIn(ctx, client, 'created')];
    await ctx.service.deletePayout(client.principal, deleted.id, { requestId: null });
    const read = (id: string, owner: TestClient, includeDeleted = false) => ({
      clientId: owner.clientId,
      id,
      includeDeleted,
    });
    const found = await findPayouts(ctx.db, [
      read(deleted.id, client),
      read(mine.id, other),
      read(mine.id, client),
      read(deleted.id, client, true),
    ]);
    expect(found.map((payout) => (payout === null ? null : (payout as Payout).id))).to.deep.equal([
      null,
      null,
      mine.id,
      deleted.id,
    ]);
  });

  it('applies each change under its own version in one statement: a stale one alone is refused', async () => {
    const payouts = [
      await payoutIn(ctx, client, 'created'),
      await payoutIn(ctx, client, 'created'),
      await payoutIn(ctx, client, 'created'),
    ];
    const updated = await updatePayoutsVersioned(ctx.db, [
      start(client, payouts[0]!.id, 1),
      start(client, payouts[1]!.id, 2),
      start(other, payouts[2]!.id, 1),
    ]);
    expect(updated.map((payout) => payout?.status ?? null)).to.deep.equal(['processing', null, null]);
    expect(updated[0]).to.include({ version: 2 });
    expect(await statusesOf(payouts[0]!.id)).to.deep.equal(['created', 'processing']);
    // The stale change and the other client's change wrote nothing, not even history.
    for (const payout of payouts.slice(1)) {
      expect(await statusesOf(payout.id)).to.deep.equal(['created']);
      expect((await ctx.db('payouts').where({ id: payout.id }).first()).version).to.equal(1);
    }
  });

  it('answers every change of a statement in its own place, even one payout named twice', async () => {
    const payout = await payoutIn(ctx, client, 'created');
    const missing = '00000000-0000-7000-8000-000000000000';
    const updated = await updatePayoutsVersioned(ctx.db, [
      start(client, payout.id, 1),
      start(client, missing, 1),
      start(client, payout.id, 1),
    ]);
    expect(updated).to.have.length(3);
    expect(updated[1]).to.equal(null);
    // The payout changes once: one of its two changes wins, the other is answered as a lost race.
    expect([updated[0], updated[2]].filter((result) => result !== null)).to.have.length(1);
    expect(await statusesOf(payout.id)).to.deep.equal(['created', 'processing']);
  });

  it('keeps the other changes of a batch when one breaks a constraint', async () => {
    const [good, bad] = [await payoutIn(ctx, client, 'created'), await payoutIn(ctx, client, 'created')];
    const changes = new Batcher((items: VersionedChange[]) => updatePayoutsVersioned(ctx.db, items), {
      maxBatch: 10,
    });
    // `failed` without a failure breaks payouts_failure_iff_failed: the whole statement is refused.
    const broken: VersionedChange = { ...start(client, bad.id, 1), changes: { status: 'failed' } };
    const [kept, refused] = await Promise.allSettled([
      changes.run(start(client, good.id, 1)),
      changes.run(broken),
    ]);
    expect(kept.status === 'fulfilled' && kept.value?.status).to.equal('processing');
    expect(refused.status === 'rejected' && (refused.reason as { constraint?: string }).constraint).to.equal(
      'payouts_failure_iff_failed',
    );
    expect((await ctx.db('payouts').where({ id: bad.id }).first()).status).to.equal('created');
  });

  it('shares statements between concurrent changes of different payouts, each still versioned', async () => {
    const payouts = await Promise.all(Array.from({ length: 30 }, () => payoutIn(ctx, client, 'created')));
    const statements: string[] = [];
    const onQuery = (query: { sql: string }) => statements.push(query.sql);
    ctx.db.on('query', onQuery);
    try {
      const worker = workerPrincipal(client.clientId);
      // Each payout gets two concurrent STARTs: exactly one wins, the other re-reads and is refused.
      const outcomes = await Promise.allSettled(
        [...payouts, ...payouts].map((payout) =>
          ctx.service.applyEvent(worker, payout.id, { type: 'START' }, { requestId: null }),
        ),
      );
      expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).to.have.length(30);
    } finally {
      ctx.db.off('query', onQuery);
    }
    const updates = statements.filter((sql) => sql.includes('UPDATE payouts p SET'));
    expect(updates.length).to.be.greaterThan(0).and.below(15);
    for (const payout of payouts) {
      expect(await statusesOf(payout.id)).to.deep.equal(['created', 'processing']);
      expect((await ctx.db('payouts').where({ id: payout.id }).first()).version).to.equal(2);
    }
  });

  it('skips a row another transaction holds instead of holding up the batch', async () => {
    const payouts = await Promise.all(Array.from({ length: 3 }, () => payoutIn(ctx, client, 'created')));
    const tx = await ctx.db.transaction();
    try {
      await tx('payouts').where({ id: payouts[1]!.id }).forUpdate();
      const updated = await updateUnlockedPayoutsVersioned(
        ctx.db,
        payouts.map((payout) => start(client, payout.id, 1)),
      );
      expect(updated.map((payout) => (payout === ROW_LOCKED ? payout : payout?.status))).to.deep.equal([
        'processing',
        ROW_LOCKED,
        'processing',
      ]);
    } finally {
      await tx.rollback();
    }
    expect(await statusesOf(payouts[1]!.id)).to.deep.equal(['created']);
  });

  it('lets a change of a busy payout wait alone while the rest of its batch goes through', async () => {
    const [busy, ...others] = await Promise.all(
      Array.from({ length: 5 }, () => payoutIn(ctx, client, 'created')),
    );
    const worker = workerPrincipal(client.clientId);
    const startOf = (id: string) =>
      ctx.service.applyEvent(worker, id, { type: 'START' }, { requestId: null });
    const tx = await ctx.db.transaction();
    let busyStarted: Promise<unknown> | undefined;
    try {
      await tx('payouts').where({ id: busy!.id }).forUpdate();
      let busySettled = false;
      busyStarted = startOf(busy!.id).finally(() => (busySettled = true));
      // These share a statement with the busy payout's change, and finish while its row is still held.
      const started = await Promise.all(others.map((payout) => startOf(payout.id)));
      expect(started.map((payout) => payout.status)).to.deep.equal(others.map(() => 'processing'));
      expect(busySettled).to.equal(false);
    } finally {
      await tx.rollback();
    }
    expect(await busyStarted).to.include({ status: 'processing', version: 2 });
  });

  describe('creates', () => {
    /** A create through the service, as the API makes it: its stored answer names the payout. */
    const createAs = (principal: Principal, key?: string, input = payoutInput()) =>
      ctx.service.createPayout(principal, input, {
        requestId: 'req-batch-create',
        ...(key === undefined ? {} : { idempotencyKey: key }),
        answer: (payout) => ({ status: 201, body: { id: payout.id } }),
      });
    const idOf = (result: CreateResult) => String(result.answer.body.id);
    /** The transaction ids that wrote these payouts: one id, one statement. */
    const writersOf = async (ids: string[]) =>
      (await ctx.db('payouts').whereIn('id', ids).distinct(ctx.db.raw('xmin::text AS xmin'))).map(
        (row: { xmin: string }) => row.xmin,
      );
    const rowsOf = async (table: string, ids: string[]) =>
      Number((await ctx.db(table).whereIn('payout_id', ids).count({ n: '*' }))[0]!.n);

    it('writes the creates of one turn in one statement, each whole: payout, history, message, outcome', async () => {
      const keys = Array.from({ length: 6 }, () => randomUUID());
      const results = await Promise.all([
        ...keys.map((key) => createAs(client.principal, key)),
        createAs(client.principal),
      ]);
      const ids = results.map(idOf);
      expect(results.map((result) => result.replayed)).to.deep.equal(results.map(() => false));
      expect(new Set(ids).size).to.equal(7);
      expect(await writersOf(ids)).to.have.length(1);
      expect(await rowsOf('payout_events', ids)).to.equal(7);
      expect(await rowsOf('outbox', ids)).to.equal(7);
      const outcomes = await ctx.db('idempotency_keys').whereIn('key', keys).select('key', 'payout_id');
      expect(
        Object.fromEntries(
          outcomes.map((row: { key: string; payout_id: string }) => [row.key, row.payout_id]),
        ),
      ).to.deep.equal(Object.fromEntries(keys.map((key, index) => [key, ids[index]])));
    });

    it('decides each create of a statement on its own: a revoked key, a key in flight, a key used, a key sent twice', async () => {
      const revoked = await createTestClient(ctx.db, 'batch-revoked');
      const remembered: Principal = {
        ...revoked.principal,
        proof: { keyHash: hashApiKey(revoked.key), role: 'client' },
      };
      await ctx.db('api_keys').where({ client_id: revoked.clientId }).update({ revoked_at: ctx.db.fn.now() });
      const used = randomUUID();
      const first = await createAs(client.principal, used);
      const [inFlight, twice] = [randomUUID(), randomUUID()];
      const holder = await ctx.db.client.acquireConnection();
      let settled: Array<PromiseSettledResult<CreateResult>>;
      try {
        await holder.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [
          `${client.clientId}:${inFlight}`,
        ]);
        settled = await Promise.allSettled([
          createAs(client.principal),
          createAs(remembered),
          createAs(client.principal, inFlight),
          createAs(client.principal, used),
          createAs(client.principal, twice),
          createAs(client.principal, twice),
          createAs(client.principal),
        ]);
      } finally {
        await holder.query('SELECT pg_advisory_unlock_all()');
        await ctx.db.client.releaseConnection(holder);
      }
      const [plain, refused, busy, replay, once, again, plainToo] = settled;
      const value = (result: PromiseSettledResult<CreateResult> | undefined) => {
        if (result?.status !== 'fulfilled')
          throw new Error(`expected a result, got ${JSON.stringify(result)}`);
        return result.value;
      };
      expect(refused).to.have.property('status', 'rejected');
      expect((refused as PromiseRejectedResult).reason).to.be.instanceOf(Unauthenticated);
      expect(busy).to.have.property('status', 'rejected');
      expect((busy as PromiseRejectedResult).reason).to.be.instanceOf(IdempotencyKeyInFlight);
      expect(value(replay)).to.deep.include({ replayed: true });
      expect(idOf(value(replay))).to.equal(idOf(first));
      expect(value(once).replayed).to.equal(false);
      // The second create with the key waited for the first to settle, then found its outcome.
      expect(value(again)).to.deep.include({ replayed: true });
      expect(idOf(value(again))).to.equal(idOf(value(once)));
      const written = [plain, once, plainToo].map((result) => idOf(value(result)));
      expect(await writersOf(written)).to.have.length(1);
      expect(await ctx.db('payouts').where({ client_id: revoked.clientId })).to.deep.equal([]);
      expect(
        await ctx.db('idempotency_keys').where({ client_id: client.clientId, key: inFlight }),
      ).to.deep.equal([]);
      expect(await rowsOf('outbox', written)).to.equal(3);
    });

    it('writes the create of a client with a subscribed endpoint with its delivery, beside the others', async () => {
      const subscriber = await createTestClient(ctx.db, 'batch-subscribed');
      await ctx.webhooks.createEndpoint(subscriber.principal, { url: 'https://hooks.example.com/in' });
      const [plain, subscribed] = await Promise.all([
        createAs(client.principal),
        createAs(subscriber.principal),
      ]);
      const deliveries = await ctx
        .db('webhook_deliveries')
        .whereIn('payout_id', [idOf(plain), idOf(subscribed)]);
      expect(
        deliveries.map((row: { payout_id: string; type: string }) => [row.payout_id, row.type]),
      ).to.deep.equal([[idOf(subscribed), 'payout.created']]);
      const messages = await ctx.db('outbox').whereRaw(`payload->>'delivery_id' = ?`, [deliveries[0].id]);
      expect(messages).to.have.length(1);
      expect(await rowsOf('outbox', [idOf(plain), idOf(subscribed)])).to.equal(2);
      // The delivery is not this file's to send: the relay of a later file would carry it to an endpoint that
      // does not exist, and that file would count its failure.
      await ctx.db('outbox').where({ id: messages[0].id }).update({ published_at: ctx.db.fn.now() });
    });
  });
});
