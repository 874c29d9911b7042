/**
 * The payout service's rules on the in-memory store (test/support/memory-store.ts): no database, no broker. What
 * the service decides and what it asks the store to write — payouts, history rows, messages, idempotent outcomes —
 * for every caller. The role expectations are written out by hand from SPEC (`SPEC_ROLE_EVENTS`), never read off
 * the machine.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import sinon from 'sinon';
import { loadConfig } from '../../src/config.js';
import {
  DescriptionChangesExhausted,
  Forbidden,
  IdempotencyKeyInFlight,
  IdempotencyKeyReused,
  PayoutNotDeletable,
  PayoutNotFound,
  TransitionNotAllowed,
  ValidationFailed,
  VersionMismatch,
} from '../../src/domain/errors.js';
import type { DomainError } from '../../src/domain/errors.js';
import type { Payout } from '../../src/domain/payout.js';
import type {
  CreateAnswer,
  CreatePayoutInput,
  EventInput,
  PayoutChangeResult,
} from '../../src/domain/payout-service.js';
import { PayoutService } from '../../src/domain/payout-service.js';
import { fingerprint } from '../../src/domain/payout-request.js';
import type { PayoutStore, VersionedChange } from '../../src/domain/ports.js';
import type { Principal, Role } from '../../src/domain/principal.js';
import { systemPrincipal, workerPrincipal } from '../../src/domain/principal.js';
import type { PayoutStatus } from '../../src/machines/payout-lifecycle.js';
import { PayoutMessages } from '../../src/messaging/payout-message.js';
import { IBANS, SPEC_ROLE_EVENTS, payoutInput } from '../support/fixtures.js';
import { MemoryPayoutStore } from '../support/memory-store.js';

const CURRENCIES = loadConfig({}).currencies;
const STATUSES: readonly PayoutStatus[] = ['created', 'processing', 'completed', 'failed', 'cancelled'];
const ROLES: readonly Role[] = ['client', 'operator', 'worker', 'system'];
const LEASE_MS = 45_000;
/** The service's OPTIMISTIC_TRIES (not exported): versioned saves before it asks for `saveLocked`. */
const OPTIMISTIC_TRIES = 3;
const HOUR_MS = 3_600_000;
const ctx = { requestId: 'req-test' };

const clientId = randomUUID();
const client: Principal = { clientId, role: 'client', actor: 'key:client' };
const operator: Principal = { clientId, role: 'operator', actor: 'key:operator' };
const worker = workerPrincipal(clientId);
const system = systemPrincipal(clientId);
const PRINCIPALS: Readonly<Record<Role, Principal>> = { client, operator, worker, system };
const stranger: Principal = { clientId: randomUUID(), role: 'client', actor: 'key:stranger' };
const strangerOperator: Principal = { ...stranger, role: 'operator', actor: 'key:stranger-operator' };

/** The worker's way into each status (START issues the submit, command 2); `cancelled` is the client's cancel. */
const PATHS: Readonly<Record<PayoutStatus, readonly EventInput[]>> = {
  created: [],
  processing: [{ type: 'START' }],
  completed: [{ type: 'START' }, { type: 'PROVIDER_SUCCEEDED', seq: 2 }],
  failed: [
    { type: 'START' },
    { type: 'PROVIDER_FAILED', seq: 2, failure: { code: 'provider_refused', message: 'Refused in a test' } },
  ],
  cancelled: [{ type: 'CANCEL' }],
};

/** The store as a busy payout meets it: before each of its next `races` saves, a rival changes the payout first. */
class RacingStore implements PayoutStore {
  readonly saves: VersionedChange[] = [];
  readonly create: PayoutStore['create'] = (...args) => this.inner.create(...args);
  readonly findOutcome: PayoutStore['findOutcome'] = (...args) => this.inner.findOutcome(...args);
  readonly find: PayoutStore['find'] = (read) => this.inner.find(read);
  readonly findResource: PayoutStore['findResource'] = (...args) => this.inner.findResource(...args);
  readonly saveLocked: PayoutStore['saveLocked'] = (read, prepare) => this.inner.saveLocked(read, prepare);
  readonly list: PayoutStore['list'] = (...args) => this.inner.list(...args);
  readonly listResources: PayoutStore['listResources'] = (...args) => this.inner.listResources(...args);
  readonly history: PayoutStore['history'] = (id, query) => this.inner.history(id, query);
  readonly claimStuck: PayoutStore['claimStuck'] = (...args) => this.inner.claimStuck(...args);
  readonly countStuck: PayoutStore['countStuck'] = (seconds) => this.inner.countStuck(seconds);
  readonly listNeedingAttention: PayoutStore['listNeedingAttention'] = (...args) =>
    this.inner.listNeedingAttention(...args);
  readonly deleteExpiredOutcomes: PayoutStore['deleteExpiredOutcomes'] = (ttl) =>
    this.inner.deleteExpiredOutcomes(ttl);

  constructor(
    private readonly inner: MemoryPayoutStore,
    private races: number,
    private readonly rival: (change: VersionedChange) => Promise<unknown>,
  ) {}

  async save(change: VersionedChange): Promise<Payout | null> {
    this.saves.push(change);
    if (this.races > 0) {
      this.races -= 1;
      await this.rival(change);
    }
    return this.inner.save(change);
  }
}

async function outcomeOf<T>(work: Promise<T>): Promise<T | DomainError> {
  return work.then(
    (value) => value,
    (error: unknown) => error as DomainError,
  );
}

describe('payout service (in-memory store)', () => {
  let time: number;
  let store: MemoryPayoutStore;
  let service: PayoutService;
  let answers: number;

  function serviceOn(on: PayoutStore): PayoutService {
    return new PayoutService({
      store: on,
      currencies: CURRENCIES,
      scheduler: new PayoutMessages(),
      commandLeaseMs: LEASE_MS,
    });
  }

  /** Each answer is numbered: a replay that answered a new one instead of the stored one shows. */
  function answer(payout: Payout): CreateAnswer {
    answers += 1;
    return { status: 201, body: { id: payout.id, version: payout.version, answer: answers } };
  }

  async function create(
    principal: Principal = client,
    input: CreatePayoutInput = payoutInput(),
    on: PayoutService = service,
  ): Promise<Payout> {
    const result = await on.createPayout(principal, input, { ...ctx, answer });
    if (result.replayed) throw new Error('a create without a key replayed');
    return result.payout;
  }

  /** A new payout of `owner` in `status`, the way production gets there: the worker's events, the client's cancel. */
  async function payoutIn(status: PayoutStatus, owner: Principal = client): Promise<Payout> {
    const created = await create(owner);
    for (const event of PATHS[status]) {
      const principal = event.type === 'CANCEL' ? owner : workerPrincipal(owner.clientId);
      await service.applyEvent(principal, created.id, event, { requestId: 'setup' });
    }
    const payout = await service.getPayout(owner, created.id);
    expect(payout.status, 'the setup reached its status').to.equal(status);
    return payout;
  }

  /** Every history row of `id`, oldest first. */
  async function historyOf(id: string) {
    return (await store.history(id, { limit: 1_000 })).entries;
  }

  /** Everything a change of `id` could have written: compared before and after a refused one. */
  async function written(id: string) {
    const payout = await store.find({ clientId, id, includeDeleted: true });
    return {
      version: payout?.version,
      status: payout?.status,
      description: payout?.description,
      history: (await historyOf(id)).length,
      messages: store.messages.map((message) => ({ ...message })),
    };
  }

  function messagesOf(id: string) {
    return store.messages.filter((message) => message.payoutId === id);
  }

  beforeEach(() => {
    // From the real clock: the service dates new payouts itself (`new Date()`), the store by its clock.
    time = Date.now();
    store = new MemoryPayoutStore(() => new Date(time));
    service = serviceOn(store);
    answers = 0;
  });
  afterEach(() => sinon.restore());

  describe('createPayout', () => {
    it('stores the payout, its first history row and one process message, and the answer under the key', async () => {
      const input = payoutInput();
      const result = await service.createPayout(client, input, { ...ctx, idempotencyKey: 'k-1', answer });
      expect(result.replayed).to.equal(false);
      if (result.replayed) return;
      const { payout } = result;
      expect(result.answer).to.deep.equal({ status: 201, body: { id: payout.id, version: 1, answer: 1 } });

      const stored = await store.find({ clientId, id: payout.id, includeDeleted: false });
      expect(stored).to.deep.include({
        id: payout.id,
        clientId,
        status: 'created',
        stage: 'queued',
        version: 1,
        description: 'Invoice 42',
        failure: null,
      });
      expect(stored!.amount.minor).to.equal(125050n);
      expect(stored!.amount.currency).to.equal('EUR');
      expect(stored!.recipient).to.deep.include({ type: 'iban', iban: IBANS.DE, holder_name: 'Jane Doe' });

      const history = await historyOf(payout.id);
      expect(history).to.have.length(1);
      expect(history[0]).to.deep.include({
        from: null,
        to: 'created',
        event: 'CREATE',
        actor: 'key:client',
        actorRole: 'client',
        reason: null,
        requestId: 'req-test',
      });
      expect(history[0]!.at.getTime()).to.equal(payout.createdAt.getTime());

      expect(store.messages).to.have.length(1);
      const [message] = store.messages;
      expect(message).to.deep.include({ payoutId: payout.id, commandSeq: 1, withdrawn: false, leaseMs: 0 });
      expect(message!.payload).to.deep.include({
        payout_id: payout.id,
        client_id: clientId,
        request_id: 'req-test',
        command: { seq: 1, type: 'process', delay_ms: 0 },
      });

      expect(await store.findOutcome(clientId, 'k-1', 24)).to.deep.equal({
        requestHash: fingerprint(input),
        payoutId: payout.id,
        status: 201,
        body: { id: payout.id, version: 1, answer: 1 },
      });
    });

    it('replays the stored answer for the same key and body, without a second payout', async () => {
      const options = { ...ctx, idempotencyKey: 'k-replay', answer };
      const first = await service.createPayout(client, payoutInput(), options);
      const again = await service.createPayout(client, payoutInput(), options);
      expect(again).to.deep.equal({ replayed: true, answer: first.answer });
      const page = await store.list(clientId, { limit: 10 });
      expect(page.payouts).to.have.length(1);
      expect(store.messages).to.have.length(1);
    });

    it('refuses the same key with another body, storing nothing', async () => {
      const options = { ...ctx, idempotencyKey: 'k-reused', answer };
      await service.createPayout(client, payoutInput(), options);
      const outcome = await outcomeOf(service.createPayout(client, payoutInput({ amount: '2.00' }), options));
      expect(outcome).to.be.instanceOf(IdempotencyKeyReused);
      expect((await store.list(clientId, { limit: 10 })).payouts).to.have.length(1);
    });

    it('scopes keys by client: another client’s same key creates its own payout', async () => {
      const options = { ...ctx, idempotencyKey: 'k-shared', answer };
      const mine = await service.createPayout(client, payoutInput(), options);
      const theirs = await service.createPayout(stranger, payoutInput(), options);
      expect(theirs.replayed).to.equal(false);
      expect(theirs.answer.body.id).to.not.equal(mine.answer.body.id);
    });

    it('frees a key once its outcome expired (24 hours by default)', async () => {
      const options = { ...ctx, idempotencyKey: 'k-expiring', answer };
      const first = await service.createPayout(client, payoutInput(), options);
      time += 23 * HOUR_MS;
      expect((await service.createPayout(client, payoutInput(), options)).replayed).to.equal(true);
      time += 2 * HOUR_MS;
      const later = await service.createPayout(client, payoutInput({ amount: '3.00' }), options);
      expect(later.replayed).to.equal(false);
      expect(later.answer.body.id).to.not.equal(first.answer.body.id);
      expect((await store.findOutcome(clientId, 'k-expiring', 24))!.payoutId).to.equal(later.answer.body.id);
    });

    it('tries once more when the outcome expired between the refused write and its read', async () => {
      const options = { ...ctx, idempotencyKey: 'k-swept', answer };
      await service.createPayout(client, payoutInput(), options);
      const read = store.findOutcome.bind(store);
      const findOutcome = sinon.stub(store, 'findOutcome').callsFake((...args) => {
        time += 25 * HOUR_MS;
        return read(...args);
      });
      const second = await service.createPayout(client, payoutInput({ amount: '5.00' }), options);
      expect(second.replayed).to.equal(false);
      sinon.assert.calledOnce(findOutcome);
      expect((await store.list(clientId, { limit: 10 })).payouts).to.have.length(2);
    });

    it('answers a duplicate in flight as IdempotencyKeyInFlight', async () => {
      sinon.stub(store, 'create').resolves('in_flight');
      const outcome = await outcomeOf(
        service.createPayout(client, payoutInput(), { ...ctx, idempotencyKey: 'k-busy', answer }),
      );
      expect(outcome).to.be.instanceOf(IdempotencyKeyInFlight);
    });

    it('names every bad field (by name, not pointer) and asks nothing of the store', async () => {
      const createSpy = sinon.spy(store, 'create');
      const outcome = await outcomeOf(
        create(
          client,
          payoutInput({
            amount: '1.001',
            recipient: { type: 'iban', iban: 'DE00', holder_name: '' },
            description: 'a\u0000',
          }),
        ),
      );
      expect(outcome).to.be.instanceOf(ValidationFailed);
      expect((outcome as ValidationFailed).fields!.map((error) => error.field)).to.have.members([
        'amount',
        'recipient.iban',
        'recipient.holder_name',
        'description',
      ]);
      sinon.assert.notCalled(createSpy);
      expect(store.messages).to.have.length(0);
    });

    it('names an unknown currency as `currency`', async () => {
      const outcome = await outcomeOf(create(client, payoutInput({ currency: 'XXX' })));
      expect((outcome as ValidationFailed).fields!.map((error) => error.field)).to.deep.equal(['currency']);
    });
  });

  describe('getPayout and listEvents', () => {
    it('answers another client’s payout as not found, for every read and change', async () => {
      const payout = await payoutIn('created');
      const attempts: Array<Promise<unknown>> = [
        service.getPayout(stranger, payout.id),
        service.getPayout(strangerOperator, payout.id),
        service.getPayout(workerPrincipal(stranger.clientId), payout.id),
        service.listEvents(stranger, payout.id, { limit: 20 }),
        service.updateDescription(stranger, payout.id, 'mine now', ctx),
        service.deletePayout(stranger, payout.id, ctx),
        service.applyEvent(workerPrincipal(stranger.clientId), payout.id, { type: 'START' }, ctx),
      ];
      for (const attempt of attempts) {
        expect(await outcomeOf(attempt)).to.be.instanceOf(PayoutNotFound);
      }
      expect(await written(payout.id)).to.include({ version: 1, history: 1 });
    });

    it('answers a malformed id as not found without asking the store', async () => {
      const find = sinon.spy(store, 'find');
      for (const id of ['urn:uuid:0195f0a4-8e7b-7c3d-9a1e-2b3c4d5e6f70', 'x\u0000', '', 'NOT-A-UUID']) {
        expect(await outcomeOf(service.getPayout(client, id)), id).to.be.instanceOf(PayoutNotFound);
        expect(await outcomeOf(service.updateDescription(client, id, 'x', ctx)), id).to.be.instanceOf(
          PayoutNotFound,
        );
      }
      sinon.assert.notCalled(find);
      // The spy does see reads: a canonical id that names nothing is looked up.
      await outcomeOf(service.getPayout(client, '0195f0a4-8e7b-7c3d-9a1e-2b3c4d5e6f70'));
      sinon.assert.calledOnce(find);
    });

    it('lists a payout’s history in order', async () => {
      const payout = await payoutIn('completed');
      const { items: events, next } = await service.listEvents(client, payout.id, { limit: 20 });
      expect(next).to.equal(null);
      expect(events.map(({ from, to, event }) => [from, to, event])).to.deep.equal([
        [null, 'created', 'CREATE'],
        ['created', 'processing', 'START'],
        ['processing', 'completed', 'PROVIDER_SUCCEEDED'],
      ]);
    });
  });

  describe('updatePayout: every role × status × requested status', () => {
    type Expected = 'changed' | 'accepted' | 'forbidden' | 'conflict';
    const REQUESTS: Partial<Record<PayoutStatus, 'CANCEL' | 'SUCCEED' | 'FAIL'>> = {
      cancelled: 'CANCEL',
      completed: 'SUCCEED',
      failed: 'FAIL',
    };
    /** By hand, from SPEC: a cancel only from created; an operator's completed/failed only from processing. */
    function expected(role: Role, from: PayoutStatus, to: PayoutStatus): Expected {
      const event = REQUESTS[to];
      if (event === undefined || !SPEC_ROLE_EVENTS[role].includes(event)) return 'forbidden';
      if (event === 'CANCEL') return from === 'created' ? 'changed' : 'conflict';
      return from === 'processing' ? 'accepted' : 'conflict';
    }
    /** What a refused caller is told it may do instead, by hand (a processing payout here is submitting). */
    function actionsOf(role: Role, status: PayoutStatus): string[] {
      if (role !== 'client' && role !== 'operator') return [];
      if (status === 'created') return ['cancel'];
      if (status === 'processing' && role === 'operator') return ['succeed', 'fail'];
      return [];
    }

    for (const role of ROLES) {
      for (const from of STATUSES) {
        for (const to of STATUSES) {
          const wanted = expected(role, from, to);
          it(`${role}: ${from} → ${to} is ${wanted}`, async () => {
            const payout = await payoutIn(from);
            const before = await written(payout.id);
            const outcome = await outcomeOf(
              service.updatePayout(
                PRINCIPALS[role],
                payout.id,
                { status: to },
                { ...ctx, reason: 'resolved by hand' },
              ),
            );
            if (wanted === 'forbidden' || wanted === 'conflict') {
              if (wanted === 'forbidden') expect(outcome).to.be.instanceOf(Forbidden);
              else {
                expect(outcome).to.be.instanceOf(TransitionNotAllowed);
                const { facts } = outcome as TransitionNotAllowed;
                expect(facts.payout_status).to.equal(from);
                expect(facts.available_actions).to.have.members(actionsOf(role, from));
              }
              expect(await written(payout.id), 'nothing written').to.deep.equal(before);
              return;
            }
            const result = outcome as PayoutChangeResult;
            expect(result.accepted).to.equal(wanted === 'accepted');
            expect(result.payout.status).to.equal(wanted === 'accepted' ? 'processing' : to);
            expect(result.payout.version).to.equal(payout.version + 1);
            const stored = await store.find({ clientId, id: payout.id, includeDeleted: false });
            expect(stored).to.deep.include({ status: result.payout.status, version: payout.version + 1 });
            const history = await historyOf(payout.id);
            expect(history).to.have.length(before.history + 1);
            expect(history.at(-1)).to.deep.include({
              from,
              to: result.payout.status,
              event: REQUESTS[to],
              actor: PRINCIPALS[role].actor,
              actorRole: role,
              reason: 'resolved by hand',
              requestId: 'req-test',
            });
            const messages = messagesOf(payout.id);
            if (wanted === 'changed') {
              // The cancel answered the process message: withdrawn with it; no new command.
              expect(messages.map((m) => [m.commandSeq, m.withdrawn])).to.deep.equal([[1, true]]);
            } else {
              // A request recorded for the worker: the submit in flight stays, nothing new is sent.
              expect(messages).to.have.length(before.messages.length);
              expect(store.waiting(payout.id).map((m) => m.commandSeq)).to.deep.equal([2]);
            }
          });
        }
      }
    }
  });

  describe('updatePayout: reasons, versions, descriptions', () => {
    it('requires a reason of an operator resolving a payout, and writes nothing without one', async () => {
      const payout = await payoutIn('processing');
      const before = await written(payout.id);
      for (const reason of [undefined, '   ']) {
        const outcome = await outcomeOf(
          service.updatePayout(operator, payout.id, { status: 'completed' }, { ...ctx, reason }),
        );
        expect(outcome, String(reason)).to.be.instanceOf(ValidationFailed);
        expect((outcome as ValidationFailed).fields).to.deep.equal([
          { field: 'reason', message: 'is required to send SUCCEED' },
        ]);
      }
      expect(await written(payout.id)).to.deep.equal(before);
    });

    it('refuses an unstorable reason before reading anything', async () => {
      const payout = await payoutIn('created');
      const find = sinon.spy(store, 'find');
      const outcome = await outcomeOf(
        service.updatePayout(client, payout.id, { status: 'cancelled' }, { ...ctx, reason: 'x\u0000' }),
      );
      expect((outcome as ValidationFailed).fields!.map((error) => error.field)).to.deep.equal(['reason']);
      sinon.assert.notCalled(find);
    });

    it('lets a client cancel without a reason', async () => {
      const payout = await payoutIn('created');
      const { payout: cancelled } = await service.updatePayout(
        client,
        payout.id,
        { status: 'cancelled' },
        ctx,
      );
      expect(cancelled).to.deep.include({ status: 'cancelled', stage: null });
      expect((await historyOf(payout.id)).at(-1)).to.deep.include({ event: 'CANCEL', reason: null });
    });

    it('refuses a request that changes nothing', async () => {
      const payout = await payoutIn('created');
      const outcome = await outcomeOf(service.updatePayout(client, payout.id, {}, ctx));
      expect(outcome).to.be.instanceOf(ValidationFailed);
      expect(await written(payout.id)).to.include({ version: 1, history: 1 });
    });

    it('refuses a stale expected version and writes nothing', async () => {
      const payout = await payoutIn('created');
      await service.updateDescription(client, payout.id, 'first', { ...ctx, expectedVersion: 1 });
      const before = await written(payout.id);
      const save = sinon.spy(store, 'save');
      const stale = await outcomeOf(
        service.updateDescription(client, payout.id, 'second', { ...ctx, expectedVersion: 1 }),
      );
      expect(stale).to.be.instanceOf(VersionMismatch);
      expect((stale as VersionMismatch).facts).to.deep.equal({ current_version: 2 });
      sinon.assert.notCalled(save);
      expect(await written(payout.id)).to.deep.equal(before);
      expect(before).to.include({ version: 2, history: 2, description: 'first' });
    });

    it('writes a description change as a new version with a DESCRIBE row, and no message', async () => {
      const payout = await payoutIn('processing');
      const messages = store.messages.length;
      const changed = await service.updateDescription(operator, payout.id, '  paid by hand?  ', ctx);
      expect(changed).to.deep.include({ version: payout.version + 1, description: 'paid by hand?' });
      expect(changed).to.deep.include({ status: 'processing', stage: 'submitting' });
      expect((await historyOf(payout.id)).at(-1)).to.deep.include({
        from: 'processing',
        to: 'processing',
        event: 'DESCRIBE',
        actorRole: 'operator',
      });
      expect(store.messages).to.have.length(messages);
      const cleared = await service.updateDescription(operator, payout.id, '   ', ctx);
      expect(cleared.description).to.equal(null);
    });

    it('writes a status and a description asked together as one version and one history row', async () => {
      const payout = await payoutIn('created');
      const { payout: changed } = await service.updatePayout(
        client,
        payout.id,
        { status: 'cancelled', description: 'not needed' },
        ctx,
      );
      expect(changed).to.deep.include({ status: 'cancelled', description: 'not needed', version: 2 });
      expect((await historyOf(payout.id)).map((entry) => entry.event)).to.deep.equal(['CREATE', 'CANCEL']);
    });

    it('lets an operator change the description of a final payout, not its status', async () => {
      const payout = await payoutIn('completed');
      const changed = await service.updateDescription(operator, payout.id, 'reconciled', ctx);
      expect(changed).to.deep.include({ status: 'completed', version: payout.version + 1 });
    });
  });

  describe('deletePayout', () => {
    it('cancels and hides a created payout; the worker still sees it, cancelled', async () => {
      const payout = await payoutIn('created');
      await service.deletePayout(client, payout.id, ctx);
      for (const principal of [client, operator]) {
        expect(await outcomeOf(service.getPayout(principal, payout.id))).to.be.instanceOf(PayoutNotFound);
      }
      expect((await service.listPayouts(client, { limit: 10 })).items).to.have.length(0);
      const seen = await service.getPayout(worker, payout.id);
      expect(seen).to.deep.include({ status: 'cancelled', version: 2 });
      expect((await historyOf(payout.id)).at(-1)).to.deep.include({
        from: 'created',
        to: 'cancelled',
        event: 'CANCEL',
        reason: 'deleted',
      });
      expect(messagesOf(payout.id).map((m) => m.withdrawn)).to.deep.equal([true]);
      // The worker's START on it is a conflict, not an unknown payout.
      expect(await outcomeOf(service.applyEvent(worker, payout.id, { type: 'START' }, ctx))).to.be.instanceOf(
        TransitionNotAllowed,
      );
      expect(await outcomeOf(service.deletePayout(client, payout.id, ctx))).to.be.instanceOf(PayoutNotFound);
    });

    it('refuses to delete a payout that started, and a worker’s delete', async () => {
      const started = await payoutIn('processing');
      expect(await outcomeOf(service.deletePayout(client, started.id, ctx))).to.be.instanceOf(
        PayoutNotDeletable,
      );
      const created = await payoutIn('created');
      expect(await outcomeOf(service.deletePayout(worker, created.id, ctx))).to.be.instanceOf(Forbidden);
      expect(await written(created.id)).to.include({ version: 1, status: 'created' });
    });
  });

  describe('a change racing another', () => {
    /** Another caller's description change, through its own service on the same store. */
    function rivalDescribes(description: string) {
      return (change: VersionedChange) =>
        serviceOn(store).updateDescription(client, change.id, description, { requestId: 'rival' });
    }

    it('reads again and decides again: a cancel after a rival edit keeps the edit', async () => {
      const payout = await payoutIn('created');
      const racing = new RacingStore(store, 1, rivalDescribes('by the rival'));
      const { payout: cancelled } = await serviceOn(racing).updatePayout(
        client,
        payout.id,
        { status: 'cancelled' },
        ctx,
      );
      expect(cancelled).to.deep.include({ status: 'cancelled', version: 3, description: 'by the rival' });
      expect(racing.saves.map((change) => change.expectedVersion)).to.deep.equal([1, 2]);
      expect((await historyOf(payout.id)).map((entry) => entry.event)).to.deep.equal([
        'CREATE',
        'DESCRIBE',
        'CANCEL',
      ]);
    });

    it('never overwrites: a START that lost to a cancel is refused on the fresh read', async () => {
      const payout = await payoutIn('created');
      const racing = new RacingStore(store, 1, (change) =>
        serviceOn(store).updatePayout(client, change.id, { status: 'cancelled' }, { requestId: 'rival' }),
      );
      const outcome = await outcomeOf(
        serviceOn(racing).applyEvent(worker, payout.id, { type: 'START' }, ctx),
      );
      expect(outcome).to.be.instanceOf(TransitionNotAllowed);
      expect(racing.saves).to.have.length(1);
      expect(await written(payout.id)).to.include({ status: 'cancelled', version: 2, history: 2 });
      expect(messagesOf(payout.id).map((m) => m.commandSeq)).to.deep.equal([1]);
    });

    it('turns a race under an expected version into VersionMismatch', async () => {
      const payout = await payoutIn('created');
      const racing = new RacingStore(store, 1, rivalDescribes('by the rival'));
      const outcome = await outcomeOf(
        serviceOn(racing).updateDescription(client, payout.id, 'mine', { ...ctx, expectedVersion: 1 }),
      );
      expect(outcome).to.be.instanceOf(VersionMismatch);
      expect(await written(payout.id)).to.include({ version: 2, description: 'by the rival' });
    });

    it(`holds the payout with saveLocked after ${OPTIMISTIC_TRIES} lost races, not before`, async () => {
      for (const races of [OPTIMISTIC_TRIES - 1, OPTIMISTIC_TRIES]) {
        const payout = await payoutIn('created');
        const racing = new RacingStore(store, races, rivalDescribes(`rival ${races}`));
        const saveLocked = sinon.spy(racing, 'saveLocked');
        const { payout: cancelled } = await serviceOn(racing).updatePayout(
          client,
          payout.id,
          { status: 'cancelled' },
          ctx,
        );
        expect(cancelled).to.deep.include({ status: 'cancelled', version: races + 2 });
        expect(racing.saves, `${races} races`).to.have.length(Math.min(races + 1, OPTIMISTIC_TRIES));
        expect(saveLocked.callCount, `${races} races`).to.equal(races < OPTIMISTIC_TRIES ? 0 : 1);
        const events = (await historyOf(payout.id)).map((entry) => entry.event);
        expect(events).to.deep.equal(['CREATE', ...Array<string>(races).fill('DESCRIBE'), 'CANCEL']);
      }
    });

    it('takes a stale `current` as a first read only', async () => {
      const created = await payoutIn('created');
      await service.applyEvent(worker, created.id, { type: 'START' }, ctx);
      const done = await service.applyEvent(
        worker,
        created.id,
        { type: 'PROVIDER_SUCCEEDED', seq: 2 },
        { ...ctx, current: created },
      );
      expect(done).to.deep.include({ status: 'completed', version: 3 });
    });
  });

  describe('the worker path', () => {
    it('START with carriesOutCommands issues a leased submit and settles the process message', async () => {
      const payout = await payoutIn('created');
      const started = await service.applyEvent(
        worker,
        payout.id,
        { type: 'START' },
        { ...ctx, carriesOutCommands: true },
      );
      expect(started).to.deep.include({ status: 'processing', stage: 'submitting', version: 2 });
      const [process, submit, ...rest] = messagesOf(payout.id);
      expect(rest).to.have.length(0);
      expect(process).to.deep.include({ commandSeq: 1, withdrawn: true });
      expect(submit).to.deep.include({ commandSeq: 2, withdrawn: false, leaseMs: LEASE_MS });
      expect(submit!.lockedUntil!.getTime()).to.equal(time + LEASE_MS);
      expect(submit!.payload.command).to.deep.equal({ seq: 2, type: 'submit', delay_ms: 0 });
    });

    it('START without carriesOutCommands leaves the submit to the relays at once', async () => {
      const payout = await payoutIn('created');
      await service.applyEvent(worker, payout.id, { type: 'START' }, ctx);
      expect(messagesOf(payout.id)[1]).to.deep.include({ commandSeq: 2, leaseMs: 0, lockedUntil: null });
    });

    it('wakes the relays for a command they may publish now, never for one leased to the worker', async () => {
      const wake = sinon.spy();
      const waking = new PayoutService({
        store,
        currencies: CURRENCIES,
        scheduler: new PayoutMessages(),
        commandLeaseMs: LEASE_MS,
        waker: { wake },
      });
      const leased = await payoutIn('created');
      await waking.applyEvent(worker, leased.id, { type: 'START' }, { ...ctx, carriesOutCommands: true });
      sinon.assert.notCalled(wake);
      const published = await payoutIn('created');
      await waking.applyEvent(worker, published.id, { type: 'START' }, ctx);
      sinon.assert.calledOnce(wake);
    });

    it('PROVIDER_SUCCEEDED for the outstanding command completes and withdraws the submit', async () => {
      const payout = await payoutIn('processing');
      const done = await service.applyEvent(
        worker,
        payout.id,
        { type: 'PROVIDER_SUCCEEDED', seq: 2 },
        { ...ctx, carriesOutCommands: true },
      );
      expect(done).to.deep.include({ status: 'completed', stage: null, version: 3, failure: null });
      expect(messagesOf(payout.id).map((m) => [m.commandSeq, m.withdrawn])).to.deep.equal([
        [1, true],
        [2, true],
      ]);
      expect((await historyOf(payout.id)).at(-1)).to.deep.include({
        from: 'processing',
        to: 'completed',
        event: 'PROVIDER_SUCCEEDED',
        actorRole: 'worker',
      });
    });

    it('refuses an answer to another command and writes nothing', async () => {
      const payout = await payoutIn('processing');
      const before = await written(payout.id);
      const outcome = await outcomeOf(
        service.applyEvent(worker, payout.id, { type: 'PROVIDER_SUCCEEDED', seq: 1 }, ctx),
      );
      expect(outcome).to.be.instanceOf(TransitionNotAllowed);
      expect(await written(payout.id)).to.deep.equal(before);
      expect(store.waiting(payout.id).map((m) => m.commandSeq)).to.deep.equal([2]);
    });

    it('stores the provider’s failure with the failed payout', async () => {
      const payout = await payoutIn('failed');
      expect(payout.failure).to.deep.equal({ code: 'provider_refused', message: 'Refused in a test' });
      expect(payout.stage).to.equal(null);
    });

    it('leases only commands carried out at once: a retry after its back-off goes to the relays', async () => {
      const payout = await payoutIn('processing');
      await service.applyEvent(
        worker,
        payout.id,
        { type: 'PROVIDER_UNAVAILABLE', seq: 2, message: 'timeout', at: new Date(time).toISOString() },
        { ...ctx, carriesOutCommands: true },
      );
      const retry = messagesOf(payout.id).at(-1)!;
      expect(retry).to.deep.include({ commandSeq: 3, leaseMs: 0, lockedUntil: null });
      expect(retry.payload.command).to.deep.equal({ seq: 3, type: 'submit', delay_ms: 1000 });
      expect(messagesOf(payout.id).find((m) => m.commandSeq === 2)!.withdrawn).to.equal(true);
    });

    it('lets the provider overrule an operator’s request, and says so in the history', async () => {
      const payout = await payoutIn('processing');
      const request = await service.updatePayout(
        operator,
        payout.id,
        { status: 'failed' },
        { ...ctx, reason: 'customer asked' },
      );
      expect(request).to.deep.include({ accepted: true });
      const done = await service.applyEvent(worker, payout.id, { type: 'PROVIDER_SUCCEEDED', seq: 2 }, ctx);
      expect(done.status).to.equal('completed');
      expect((await historyOf(payout.id)).at(-1)!.reason).to.equal(
        "The provider overruled the operator's request to fail: the payout is completed.",
      );
    });
  });

  describe('listPayouts', () => {
    it('pages newest first with `next`, until the last page', async () => {
      const ids: string[] = [];
      for (let index = 0; index < 5; index += 1) ids.push((await create()).id);
      await create(stranger);
      const seen: string[][] = [];
      let after: string | undefined;
      do {
        const page = await service.listPayouts(client, { limit: 2, after });
        seen.push(page.items.map((item) => item.id));
        after = page.next ?? undefined;
      } while (after !== undefined && seen.length < 10);
      expect(seen).to.deep.equal([[ids[4], ids[3]], [ids[2], ids[1]], [ids[0]]]);
    });

    it('answers no `next` when the page holds the last payout exactly', async () => {
      await create();
      await create();
      const page = await service.listPayouts(client, { limit: 2 });
      expect(page.items).to.have.length(2);
      expect(page.next).to.equal(null);
    });

    it('filters by status and currency', async () => {
      const euros = await create();
      const dollars = await create(client, payoutInput({ currency: 'USD' }));
      const cancelled = await payoutIn('cancelled');
      const ids = async (query: Parameters<PayoutService['listPayouts']>[1]) =>
        (await service.listPayouts(client, query)).items.map((item) => item.id);
      expect(await ids({ limit: 10, currency: 'USD' })).to.deep.equal([dollars.id]);
      expect(await ids({ limit: 10, status: 'cancelled' })).to.deep.equal([cancelled.id]);
      expect(await ids({ limit: 10, status: 'created', currency: 'EUR' })).to.deep.equal([euros.id]);
    });

    it('validates `limit` (1–100) and `currency` as fields, asking nothing of the store', async () => {
      const list = sinon.spy(store, 'list');
      for (const limit of [0, 101, 1.5, Number.NaN]) {
        const outcome = await outcomeOf(service.listPayouts(client, { limit }));
        expect(
          (outcome as ValidationFailed).fields!.map((error) => error.field),
          String(limit),
        ).to.deep.equal(['limit']);
      }
      const both = await outcomeOf(service.listPayouts(client, { limit: 0, currency: 'XXX' }));
      expect(both).to.be.instanceOf(ValidationFailed);
      expect((both as ValidationFailed).fields!.map((error) => error.field)).to.deep.equal([
        'limit',
        'currency',
      ]);
      sinon.assert.notCalled(list);
      for (const limit of [1, 100]) await service.listPayouts(client, { limit });
      sinon.assert.calledTwice(list);
    });

    it('validates a page of resources the same way, asking nothing of the store', async () => {
      const listResources = sinon.spy(store, 'listResources');
      const refused = await outcomeOf(service.listPayoutResources(client, { limit: 0, currency: 'XXX' }));
      expect((refused as ValidationFailed).fields!.map((error) => error.field)).to.deep.equal([
        'limit',
        'currency',
      ]);
      sinon.assert.notCalled(listResources);
      const page = await service.listPayoutResources(client, { limit: 1 });
      sinon.assert.calledOnceWithExactly(
        listResources,
        client.clientId,
        client.role,
        { limit: 1 },
        undefined,
      );
      expect(page.resources.every((resource) => typeof JSON.parse(resource) === 'object')).to.equal(true);
    });
  });

  describe('listEvents', () => {
    it('pages oldest first with `next`, until the last page, with no overlap and no gap', async () => {
      let payout = await payoutIn('created');
      for (let n = 1; n <= 4; n += 1)
        payout = await service.updateDescription(client, payout.id, `take ${n}`, ctx);
      const first = await service.listEvents(client, payout.id, { limit: 2 });
      expect(first.items.map((entry) => entry.event)).to.deep.equal(['CREATE', 'DESCRIBE']);
      expect(first.next).to.equal(first.items[1]!.id);
      const second = await service.listEvents(client, payout.id, { limit: 2, after: first.next! });
      const third = await service.listEvents(client, payout.id, { limit: 2, after: second.next! });
      expect(third.next).to.equal(null);
      const walked = [...first.items, ...second.items, ...third.items].map((entry) => entry.id);
      expect(walked).to.deep.equal((await historyOf(payout.id)).map((entry) => entry.id));
      expect(walked).to.have.length(5);
      // A page that ends with the last row exactly says so: no empty page after it.
      expect((await service.listEvents(client, payout.id, { limit: 5 })).next).to.equal(null);
    });

    it('validates `limit` (1–100) as a field, asking nothing of the store', async () => {
      const payout = await payoutIn('created');
      const history = sinon.spy(store, 'history');
      for (const limit of [0, 101, 1.5, Number.NaN]) {
        const outcome = await outcomeOf(service.listEvents(client, payout.id, { limit }));
        expect(
          (outcome as ValidationFailed).fields!.map((error) => error.field),
          String(limit),
        ).to.deep.equal(['limit']);
      }
      sinon.assert.notCalled(history);
      for (const limit of [1, 100]) await service.listEvents(client, payout.id, { limit });
      sinon.assert.calledTwice(history);
    });
  });

  describe('description changes: at most `maxDescriptionChanges` per payout', () => {
    const LIMIT = 2;

    beforeEach(() => {
      service = new PayoutService({
        store,
        currencies: CURRENCIES,
        scheduler: new PayoutMessages(),
        commandLeaseMs: LEASE_MS,
        maxDescriptionChanges: LIMIT,
      });
    });

    async function spent(): Promise<Payout> {
      let payout = await payoutIn('created');
      for (let n = 1; n <= LIMIT; n += 1)
        payout = await service.updateDescription(client, payout.id, `take ${n}`, ctx);
      return payout;
    }

    it('refuses the next one with DescriptionChangesExhausted { limit }, writing nothing', async () => {
      const payout = await spent();
      const before = await written(payout.id);
      expect(before).to.include({ version: 1 + LIMIT, history: 1 + LIMIT, description: `take ${LIMIT}` });
      for (const attempt of [
        () => service.updateDescription(client, payout.id, 'one too many', ctx),
        () => service.updateDescription(operator, payout.id, 'one too many', ctx),
        () => service.updateDescription(client, payout.id, null, { ...ctx, expectedVersion: payout.version }),
        // A description along with a status is a description change too.
        () => service.updatePayout(client, payout.id, { status: 'cancelled', description: 'x' }, ctx),
      ]) {
        const outcome = await outcomeOf<unknown>(attempt());
        expect(outcome).to.be.instanceOf(DescriptionChangesExhausted);
        expect(outcome).to.deep.include({ code: 'description_changes_exhausted', facts: { limit: LIMIT } });
      }
      expect(await written(payout.id)).to.deep.equal(before);
    });

    it('answers a stale expected version first (VersionMismatch), and another client’s payout as not found', async () => {
      const payout = await spent();
      expect(
        await outcomeOf(service.updateDescription(client, payout.id, 'x', { ...ctx, expectedVersion: 1 })),
      ).to.be.instanceOf(VersionMismatch);
      expect(await outcomeOf(service.updateDescription(stranger, payout.id, 'x', ctx))).to.be.instanceOf(
        PayoutNotFound,
      );
    });

    it('leaves status changes alone, and counts per payout', async () => {
      const payout = await spent();
      const cancelled = await service.updatePayout(client, payout.id, { status: 'cancelled' }, ctx);
      expect(cancelled.payout).to.include({ status: 'cancelled', version: 2 + LIMIT });
      const other = await payoutIn('created');
      expect((await service.updateDescription(client, other.id, 'first', ctx)).version).to.equal(2);
    });

    it('defaults to 100', async () => {
      service = serviceOn(store);
      let payout = await payoutIn('created');
      for (let n = 1; n <= 100; n += 1)
        payout = await service.updateDescription(client, payout.id, `take ${n}`, ctx);
      expect(await outcomeOf(service.updateDescription(client, payout.id, 'x', ctx))).to.be.instanceOf(
        DescriptionChangesExhausted,
      );
    });
  });
});
