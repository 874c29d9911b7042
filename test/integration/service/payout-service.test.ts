import { expect } from 'chai';
import sinon from 'sinon';
import type { TestContext as AppContext } from '../../support/context.js';
import { createTestContext as createContext } from '../../support/context.js';
import {
  Forbidden,
  PayoutNotDeletable,
  PayoutNotFound,
  TransitionNotAllowed,
  ValidationFailed,
  VersionMismatch,
} from '../../../src/domain/errors.js';
import type { Payout } from '../../../src/domain/payout.js';
import { availableActions } from '../../../src/domain/payout.js';
import type { Principal, Role } from '../../../src/domain/principal.js';
import { workerPrincipal } from '../../../src/domain/principal.js';
import { PAYOUT_MACHINE_VERSION, PAYOUT_STATUSES } from '../../../src/machines/payout-lifecycle.js';
import { PayoutMessages } from '../../../src/messaging/payout-message.js';
import { serviceTestContext } from '../../support/database.js';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient, payoutIn, payoutInput, specAllows, createWire } from '../../support/fixtures.js';

const ctxOptions = { requestId: 'req-test' };

describe('payout service (real PostgreSQL)', () => {
  let ctx: AppContext;
  let client: TestClient;
  let other: TestClient;

  before(async () => {
    ctx = serviceTestContext();
    client = await createTestClient(ctx.db);
    other = await createTestClient(ctx.db);
  });
  after(() => ctx.db.destroy());
  afterEach(() => sinon.restore());

  describe('createPayout', () => {
    it('creating a payout succeeds: payout, history and outbox rows in one commit', async () => {
      const { body, replayed } = await createWire(ctx.service, client.principal, payoutInput(), ctxOptions);
      expect(replayed).to.equal(false);
      expect(body).to.include({ amount: '1250.50', currency: 'EUR', status: 'created', version: 1 });
      expect(body.recipient.iban_last4).to.equal('3000');
      expect(body.available_actions).to.deep.equal(['cancel']);

      const row = await ctx.db('payouts').where({ id: body.id }).first();
      expect(row).to.include({
        client_id: client.clientId,
        amount_minor: '125050',
        status: 'created',
        stage: 'queued',
        machine_version: PAYOUT_MACHINE_VERSION,
      });
      // The answer is decided before the write: the stored row carries exactly the times the body shows.
      expect(
        [row.created_at, row.updated_at, row.status_changed_at].map((at: Date) => at.toISOString()),
      ).to.deep.equal([body.created_at, body.updated_at, body.created_at]);
      const history = await ctx.db('payout_events').where({ payout_id: body.id });
      expect(history).to.have.length(1);
      expect(history[0]).to.include({
        from_status: null,
        to_status: 'created',
        event: 'CREATE',
        request_id: 'req-test',
      });
      expect(history[0].at.toISOString()).to.equal(body.created_at);
      const outbox = await ctx.db('outbox').whereRaw(`payload->>'payout_id' = ?`, [body.id]);
      expect(outbox).to.have.length(1);
      expect(outbox[0].payload).to.include({
        client_id: client.clientId,
        request_id: 'req-test',
        schema_version: 2,
      });
      expect(outbox[0].payload.command).to.deep.equal({ seq: 1, type: 'process', delay_ms: 0 });
      expect(outbox[0].command_seq).to.equal(1);
      expect(outbox[0].published_at).to.equal(null);
    });

    it('creating a payout schedules processing through the scheduling port', async () => {
      const scheduler = new PayoutMessages();
      const messageFor = sinon.spy(scheduler, 'messageFor');
      const wake = sinon.spy();
      const local = createContext(ctx.config, { db: ctx.db, scheduler, waker: { wake } });
      const { body } = await createWire(local.service, client.principal, payoutInput(), ctxOptions);
      sinon.assert.calledOnceWithExactly(messageFor, {
        payoutId: body.id,
        clientId: client.clientId,
        requestId: 'req-test',
        command: { seq: 1, type: 'process', try: 1, delay_ms: 0 },
      });
      const outbox = await ctx.db('outbox').where({ payout_id: body.id });
      expect(outbox.map((row: { id: string }) => row.id)).to.deep.equal([
        messageFor.firstCall.returnValue.id,
      ]);
      sinon.assert.calledOnce(wake);
    });

    it('leaves nothing behind when the outbox refuses the message, and the key stays free', async () => {
      const lonely = await createTestClient(ctx.db);
      const earlier = await createWire(ctx.service, client.principal, payoutInput(), ctxOptions);
      const [taken] = await ctx.db('outbox').where({ payout_id: earlier.body.id }).select('id');
      const scheduler = new PayoutMessages();
      // A message id the outbox already holds: the message's insert fails after the payout's, in one statement.
      sinon.stub(scheduler, 'messageFor').callsFake((request) => ({
        ...PayoutMessages.prototype.messageFor.call(scheduler, request),
        id: (taken as { id: string }).id,
      }));
      const local = createContext(ctx.config, { db: ctx.db, scheduler });
      const options = { ...ctxOptions, idempotencyKey: 'refused-once' };
      let failure: unknown;
      try {
        await createWire(local.service, lonely.principal, payoutInput(), options);
      } catch (error) {
        failure = error;
      }
      expect((failure as { code?: string }).code).to.equal('23505');
      expect(await ctx.db('payouts').where({ client_id: lonely.clientId })).to.have.length(0);
      const history = await ctx
        .db('payout_events as e')
        .join('payouts as p', 'p.id', 'e.payout_id')
        .where('p.client_id', lonely.clientId);
      expect(history).to.have.length(0);
      expect(await ctx.db('outbox').whereRaw(`payload->>'client_id' = ?`, [lonely.clientId])).to.have.length(
        0,
      );
      expect(await ctx.db('idempotency_keys').where({ client_id: lonely.clientId })).to.have.length(0);

      const retried = await createWire(ctx.service, lonely.principal, payoutInput(), options);
      expect(retried.replayed).to.equal(false);
    });

    it('replaces an expired outcome the sweeper has not removed yet: the key creates a new payout', async () => {
      const options = { ...ctxOptions, idempotencyKey: 'expired-not-swept' };
      const first = await createWire(ctx.service, client.principal, payoutInput(), options);
      const stored = ctx
        .db('idempotency_keys')
        .where({ client_id: client.clientId, key: options.idempotencyKey });
      await stored.clone().update({ created_at: ctx.db.raw(`now() - interval '25 hours'`) });

      const second = await createWire(
        ctx.service,
        client.principal,
        payoutInput({ amount: '2.00' }),
        options,
      );
      expect(second.replayed).to.equal(false);
      expect(second.body.id).to.not.equal(first.body.id);
      expect(await stored.clone().select('payout_id', 'response_body')).to.deep.equal([
        { payout_id: second.body.id, response_body: second.body },
      ]);
      const replay = await createWire(
        ctx.service,
        client.principal,
        payoutInput({ amount: '2.00' }),
        options,
      );
      expect(replay).to.deep.equal({ body: second.body, replayed: true });
    });

    it('names every bad field and stores nothing', async () => {
      const lonely = await createTestClient(ctx.db);
      let failure: unknown;
      try {
        await createWire(
          ctx.service,
          lonely.principal,
          payoutInput({
            amount: '1.001',
            recipient: { type: 'iban', iban: 'DE00', holder_name: '' },
            description: 'a\u0000',
          }),
          ctxOptions,
        );
      } catch (error) {
        failure = error;
      }
      expect(failure).to.be.instanceOf(ValidationFailed);
      expect((failure as ValidationFailed).fields!.map((error) => error.field)).to.have.members([
        'amount',
        'recipient.iban',
        'recipient.holder_name',
        'description',
      ]);
      expect(await ctx.db('payouts').where({ client_id: lonely.clientId })).to.have.length(0);
    });

    it('replays an idempotent create and refuses the key with another body', async () => {
      const first = await createWire(ctx.service, client.principal, payoutInput(), {
        ...ctxOptions,
        idempotencyKey: 'k-1',
      });
      const again = await createWire(ctx.service, client.principal, payoutInput(), {
        ...ctxOptions,
        idempotencyKey: 'k-1',
      });
      expect(again.replayed).to.equal(true);
      expect(again.body).to.deep.equal(first.body);
      const reused = await createWire(ctx.service, client.principal, payoutInput({ amount: '2.00' }), {
        ...ctxOptions,
        idempotencyKey: 'k-1',
      }).catch((error: unknown) => error);
      expect((reused as Error).name).to.equal('IdempotencyKeyReused');
    });
  });

  describe('role rules, for every (role, status, requested status)', () => {
    const roles: Role[] = ['client', 'operator', 'worker', 'system'];
    /** From SPEC and the machine issue, by hand: what a PATCH to `to` answers. */
    function expected(
      role: Role,
      from: string,
      to: string,
    ): 'changed' | 'accepted' | 'forbidden' | 'conflict' {
      const event =
        to === 'cancelled' ? 'CANCEL' : to === 'completed' ? 'SUCCEED' : to === 'failed' ? 'FAIL' : null;
      if (event === null || !specAllows(role, event)) return 'forbidden';
      if (event === 'CANCEL') return from === 'created' ? 'changed' : 'conflict';
      return from === 'processing' ? 'accepted' : 'conflict';
    }
    for (const role of roles) {
      for (const from of PAYOUT_STATUSES) {
        for (const to of PAYOUT_STATUSES) {
          it(`${role}: ${from} → ${to}`, async () => {
            const payout = await payoutIn(ctx, client, from);
            const principal: Principal =
              role === 'client'
                ? client.principal
                : role === 'operator'
                  ? client.operator
                  : { clientId: client.clientId, role, actor: role };
            const outcome = await ctx.service
              .updatePayout(
                principal,
                payout.id,
                { status: to },
                { ...ctxOptions, reason: 'resolved by hand' },
              )
              .then(
                (updated) => updated,
                (error: unknown) => error,
              );
            const wanted = expected(role, from, to);
            if (wanted === 'forbidden') {
              expect(outcome, 'forbidden').to.be.instanceOf(Forbidden);
            } else if (wanted === 'conflict') {
              expect(outcome, 'conflict').to.be.instanceOf(TransitionNotAllowed);
              expect((outcome as TransitionNotAllowed).facts.available_actions).to.deep.equal(
                availableActions(payout, principal),
              );
            } else {
              const result = outcome as { payout: Payout; accepted: boolean };
              expect(result.accepted).to.equal(wanted === 'accepted');
              expect(result.payout.status).to.equal(wanted === 'accepted' ? from : to);
              expect(result.payout.version).to.equal(payout.version + 1);
            }
          });
        }
      }
    }

    it('requires a reason when an operator resolves a payout', async () => {
      const payout = await payoutIn(ctx, client, 'processing');
      const outcome = await ctx.service
        .updatePayout(client.operator, payout.id, { status: 'completed' }, ctxOptions)
        .catch((error: unknown) => error);
      expect(outcome).to.be.instanceOf(ValidationFailed);
      expect((outcome as ValidationFailed).fields![0]!.field).to.equal('reason');
    });

    it('applies the role rules to applyEvent too: a client cannot START or SUCCEED', async () => {
      const payout = await payoutIn(ctx, client, 'created');
      for (const event of [{ type: 'START' }, { type: 'SUCCEED', reason: 'x' }] as const) {
        const outcome = await ctx.service
          .applyEvent(client.principal, payout.id, event, ctxOptions)
          .catch((error: unknown) => error);
        expect(outcome).to.be.instanceOf(Forbidden);
      }
      expect((await ctx.service.getPayout(client.principal, payout.id)).status).to.equal('created');
    });

    it('lets the worker see a payout deleted under it as cancelled, not unknown', async () => {
      const payout = await payoutIn(ctx, client, 'created');
      await ctx.service.deletePayout(client.principal, payout.id, ctxOptions);
      const outcome = await ctx.service
        .applyEvent(workerPrincipal(client.clientId), payout.id, { type: 'START' }, ctxOptions)
        .catch((error: unknown) => error);
      expect(outcome).to.be.instanceOf(TransitionNotAllowed);
    });

    it('derives available_actions from the machine and the role', async () => {
      const created = await payoutIn(ctx, client, 'created');
      const processing = await payoutIn(ctx, client, 'processing');
      expect(availableActions(created, client.principal)).to.deep.equal(['cancel']);
      expect(availableActions(created, workerPrincipal(client.clientId))).to.deep.equal([]);
      expect(availableActions(processing, client.principal)).to.deep.equal([]);
      expect(availableActions(processing, client.operator)).to.deep.equal(['succeed', 'fail']);
    });
  });

  describe('versioned writes', () => {
    it('20 concurrent changes on one payout: versions strictly increase, one history row per success, no lost update', async () => {
      const { body } = await createWire(ctx.service, client.principal, payoutInput(), ctxOptions);
      const calls = Array.from({ length: 20 }, (_, index) =>
        index === 7
          ? ctx.service.applyEvent(client.principal, body.id, { type: 'CANCEL' }, ctxOptions)
          : ctx.service.updateDescription(client.principal, body.id, `description ${index}`, ctxOptions),
      );
      const results = await Promise.allSettled(calls);
      const successes = results
        .filter((result) => result.status === 'fulfilled')
        .map((result) => result.value);
      const failures = results.filter((result) => result.status === 'rejected');
      expect(failures, JSON.stringify(failures)).to.have.length(0);
      const versions = successes.map((payout) => payout.version).sort((a, b) => a - b);
      expect(versions).to.deep.equal(Array.from({ length: 20 }, (_, index) => index + 2));

      const final = await ctx.service.getPayout(client.principal, body.id);
      expect(final.version).to.equal(21);
      expect(final.status).to.equal('cancelled');
      const history = await ctx.db('payout_events').where({ payout_id: body.id }).orderBy('id');
      expect(history).to.have.length(21);
      expect(history.filter((row: { event: string }) => row.event === 'CANCEL')).to.have.length(1);
    });

    it('treats a stale `current` as a first read only: the write re-reads and decides again', async () => {
      const created = await payoutIn(ctx, client, 'created');
      const worker = workerPrincipal(client.clientId);
      await ctx.service.applyEvent(worker, created.id, { type: 'START' }, ctxOptions);
      // The hint says created (where the provider's answer is refused, and whose version is gone): the payout is
      // processing, with the submit START issued outstanding.
      const done = await ctx.service.applyEvent(
        worker,
        created.id,
        { type: 'PROVIDER_SUCCEEDED', seq: 2 },
        { ...ctxOptions, current: created },
      );
      expect(done).to.include({ status: 'completed', version: 3 });
      const history = await ctx.db('payout_events').where({ payout_id: created.id }).orderBy('id');
      expect(history.map((row: { event: string }) => row.event)).to.deep.equal([
        'CREATE',
        'START',
        'PROVIDER_SUCCEEDED',
      ]);
      // A stale hint never overwrites: START on a completed payout is refused after the fresh read.
      const refused = await ctx.service
        .applyEvent(worker, created.id, { type: 'START' }, { ...ctxOptions, current: created })
        .catch((error: unknown) => error);
      expect(refused).to.be.instanceOf(TransitionNotAllowed);
      expect((await ctx.service.getPayout(client.principal, created.id)).version).to.equal(3);
    });

    it('refuses a stale expected version with 412 semantics and writes nothing', async () => {
      const { body } = await createWire(ctx.service, client.principal, payoutInput(), ctxOptions);
      await ctx.service.updateDescription(client.principal, body.id, 'first', {
        ...ctxOptions,
        expectedVersion: 1,
      });
      const stale = await ctx.service
        .updateDescription(client.principal, body.id, 'second', { ...ctxOptions, expectedVersion: 1 })
        .catch((error: unknown) => error);
      expect(stale).to.be.instanceOf(VersionMismatch);
      expect((await ctx.service.getPayout(client.principal, body.id)).description).to.equal('first');
    });
  });

  describe('maintenance', () => {
    async function ageScheduling(id: string): Promise<void> {
      await ctx
        .db('payouts')
        .where({ id })
        .update({
          scheduled_at: ctx.db.raw(`now() - interval '1 hour'`),
          status_changed_at: ctx.db.raw(`now() - interval '1 hour'`),
        });
    }

    it('re-drives a stuck payout only when no message for it is still waiting in the outbox', async () => {
      const { body } = await createWire(ctx.service, client.principal, payoutInput(), ctxOptions);
      await ageScheduling(body.id);
      const redrive = async () =>
        (await ctx.maintenance.redriveStuckPayouts(10_000, 'req-sweep')).filter(
          (payout) => payout.id === body.id,
        );

      expect(await redrive(), 'its first message is still unsent').to.have.length(0);
      await ctx.db('outbox').where({ payout_id: body.id }).update({ published_at: ctx.db.fn.now() });
      expect(await redrive(), 'its message went out and nothing happened').to.have.length(1);
      expect(await redrive(), 'the re-drive message is waiting now').to.have.length(0);
      const waiting = await ctx.db('outbox').where({ payout_id: body.id }).whereNull('published_at');
      expect(waiting).to.have.length(1);
      // The machine sends its outstanding command again, under the same number, and counts the re-drive.
      expect(waiting[0].payload).to.include({ payout_id: body.id, request_id: 'req-sweep' });
      expect(waiting[0].payload.command).to.deep.include({ seq: 1, type: 'process' });
      const payout = await ctx.service.getPayout(client.principal, body.id);
      expect(payout.snapshot.context).to.include({ redrives: 1 });
      const history = await ctx.db('payout_events').where({ payout_id: body.id }).orderBy('id');
      expect(history.at(-1)).to.include({ event: 'REDRIVE', actor_role: 'system', request_id: 'req-sweep' });
    });

    it('counts a payout as stuck from its last status change, whatever else was edited', async () => {
      const { body } = await createWire(ctx.service, client.principal, payoutInput(), ctxOptions);
      const before = await ctx.maintenance.countStuckPayouts();
      await ageScheduling(body.id);
      await ctx.service.updateDescription(client.principal, body.id, 'edited while stuck', ctxOptions);
      const after = await ctx.maintenance.countStuckPayouts();
      expect(after.stuck.created).to.equal(before.stuck.created! + 1);
    });
  });

  describe('delete', () => {
    it('cancels and hides a created payout; the row and its history stay', async () => {
      const payout = await payoutIn(ctx, client, 'created');
      await ctx.service.deletePayout(client.principal, payout.id, ctxOptions);
      const gone = await ctx.service.getPayout(client.principal, payout.id).catch((error: unknown) => error);
      expect(gone).to.be.instanceOf(PayoutNotFound);
      const row = await ctx.db('payouts').where({ id: payout.id }).first();
      expect(row.status).to.equal('cancelled');
      expect(row.deleted_at).to.be.instanceOf(Date);
      expect(await ctx.db('payout_events').where({ payout_id: payout.id })).to.have.length(2);
    });

    it('refuses to delete a payout that started', async () => {
      const payout = await payoutIn(ctx, client, 'processing');
      const refused = await ctx.service
        .deletePayout(client.principal, payout.id, ctxOptions)
        .catch((error: unknown) => error);
      expect(refused).to.be.instanceOf(PayoutNotDeletable);
    });
  });

  describe('tenancy', () => {
    it('never lets a client load, list, change or delete another client’s payout', async () => {
      const payout = await payoutIn(ctx, client, 'created');
      const attempts = [
        ctx.service.getPayout(other.principal, payout.id),
        ctx.service.listEvents(other.principal, payout.id, { limit: 20 }),
        ctx.service.updateDescription(other.principal, payout.id, 'mine now', ctxOptions),
        ctx.service.applyEvent(other.principal, payout.id, { type: 'CANCEL' }, ctxOptions),
        ctx.service.deletePayout(other.principal, payout.id, ctxOptions),
        ctx.service.applyEvent(workerPrincipal(other.clientId), payout.id, { type: 'START' }, ctxOptions),
      ];
      for (const outcome of await Promise.allSettled(attempts)) {
        expect(outcome.status).to.equal('rejected');
        expect((outcome as PromiseRejectedResult).reason).to.be.instanceOf(PayoutNotFound);
      }
      let cursor: string | undefined;
      do {
        const page = await ctx.service.listPayouts(other.principal, { limit: 100, after: cursor });
        expect(page.items.map((item) => item.id)).to.not.include(payout.id);
        cursor = page.next ?? undefined;
      } while (cursor);
      expect((await ctx.service.getPayout(client.principal, payout.id)).version).to.equal(1);
    });

    it('answers a malformed id as not found without asking the database', async () => {
      // Every statement, the query builder's or a plain connection's, takes a connection from the pool first.
      const pool = ctx.db.client as { acquireConnection: () => Promise<unknown> };
      const acquired = sinon.spy(pool, 'acquireConnection');
      try {
        for (const id of ['urn:uuid:0195f0a4-8e7b-7c3d-9a1e-2b3c4d5e6f70', 'x\u0000', '']) {
          const outcomes = await Promise.all([
            ctx.service.getPayout(client.principal, id).catch((error: unknown) => error),
            ctx.service.getPayoutResource(client.principal, id).catch((error: unknown) => error),
          ]);
          for (const outcome of outcomes) expect(outcome).to.be.instanceOf(PayoutNotFound);
        }
        expect(acquired.callCount, 'no connection taken').to.equal(0);
        // The spy does see reads: a canonical id that names nothing is looked up.
        await ctx.service
          .getPayoutResource(client.principal, '0195f0a4-8e7b-7c3d-9a1e-2b3c4d5e6f70')
          .catch((error: unknown) => error);
        expect(acquired.callCount, 'a canonical id is looked up').to.be.greaterThan(0);
      } finally {
        acquired.restore();
      }
    });
  });
});
