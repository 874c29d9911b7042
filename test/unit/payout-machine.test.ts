/**
 * The payout machine (version 2) against an independent statement of its lifecycle: the public lists, the
 * OpenAPI enums, a generated state × event × role table checked against a hand-written expectation, purity,
 * and `actionsFor`'s agreement with `decide`.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { parse } from 'yaml';
import type { PayoutEventType, Role } from '../../src/machines/payout.machine.js';
import type { PayoutAction } from '../../src/machines/payout-lifecycle.js';
import {
  FINAL_STATUSES,
  PAYOUT_ACTIONS,
  PAYOUT_EVENT_TYPES,
  PAYOUT_MACHINE_VERSION,
  PAYOUT_STAGES,
  PAYOUT_STATUSES,
  PayoutLifecycle,
  UNFINISHED_STATUSES,
} from '../../src/machines/payout-lifecycle.js';
import { SPEC_ROLE_EVENTS } from '../support/fixtures.js';
import type { StateKey } from './payout-kit.js';
import { ALL_ROLES, STATE_KEYS, eventOf, keyOf, outstandingSeq, snapshotIn, valueOf } from './payout-kit.js';

const lifecycle = new PayoutLifecycle();

/**
 * The lifecycle, written by hand: `"<state> <EVENT>"` → the state the payout is in afterwards, for an event from
 * a role SPEC lets send it, with a reason and (for a provider result) the outstanding command's number.
 * Everything not listed is refused with `not_now`; a role SPEC does not list is refused with `forbidden`.
 */
const EXPECTED: Readonly<Record<string, StateKey>> = {
  // A new payout waits for a worker; the sweeper re-drives its lost message; the client may still cancel.
  'created.queued START': 'processing.submitting',
  'created.queued CANCEL': 'cancelled',
  'created.queued REDRIVE': 'created.queued',
  'created.queued DEAD_LETTERED': 'created.needs_attention',
  // A person decides: retry (back to the queue) or cancel. The sweeper leaves it alone.
  'created.needs_attention RETRY': 'created.queued',
  'created.needs_attention CANCEL': 'cancelled',
  // A submit in flight: the provider's answer settles it, an outage retries; operators' requests are recorded.
  'processing.submitting PROVIDER_SUCCEEDED': 'completed',
  'processing.submitting PROVIDER_FAILED': 'failed',
  'processing.submitting PROVIDER_UNAVAILABLE': 'processing.submitting',
  'processing.submitting REDRIVE': 'processing.submitting',
  'processing.submitting DEAD_LETTERED': 'processing.needs_attention',
  'processing.submitting SUCCEED': 'processing.submitting',
  'processing.submitting FAIL': 'processing.submitting',
  // A person decides: retry, fail or complete; a late answer of the outstanding command still settles it.
  'processing.needs_attention RETRY': 'processing.submitting',
  'processing.needs_attention FAIL': 'processing.voiding',
  'processing.needs_attention SUCCEED': 'processing.confirming',
  'processing.needs_attention PROVIDER_SUCCEEDED': 'completed',
  'processing.needs_attention PROVIDER_FAILED': 'failed',
  'processing.needs_attention DEAD_LETTERED': 'processing.needs_attention',
  // Closing the key: a payment already there wins; an operator has nothing left to ask for.
  'processing.voiding PROVIDER_SUCCEEDED': 'completed',
  'processing.voiding PROVIDER_FAILED': 'failed',
  'processing.voiding PROVIDER_UNAVAILABLE': 'processing.voiding',
  'processing.voiding REDRIVE': 'processing.voiding',
  'processing.voiding DEAD_LETTERED': 'processing.needs_attention',
  // Asking whether it paid: not found means submit again; the operator may still change the request.
  'processing.confirming PROVIDER_SUCCEEDED': 'completed',
  'processing.confirming PROVIDER_FAILED': 'failed',
  'processing.confirming PROVIDER_NOT_FOUND': 'processing.submitting',
  'processing.confirming PROVIDER_UNAVAILABLE': 'processing.confirming',
  'processing.confirming REDRIVE': 'processing.confirming',
  'processing.confirming DEAD_LETTERED': 'processing.needs_attention',
  'processing.confirming SUCCEED': 'processing.confirming',
  'processing.confirming FAIL': 'processing.confirming',
  // completed, failed, cancelled: final, nothing is accepted.
};

/** The events an operator must give a reason for. */
const REASON_REQUIRED: readonly PayoutEventType[] = ['SUCCEED', 'FAIL', 'RETRY'];

const ACTION_EVENT: Readonly<Record<PayoutAction, PayoutEventType>> = {
  cancel: 'CANCEL',
  succeed: 'SUCCEED',
  fail: 'FAIL',
  retry: 'RETRY',
};

function specAllows(role: Role, type: PayoutEventType): boolean {
  return SPEC_ROLE_EVENTS[role].includes(type);
}

/** The leaf states of the definition, read off its config: `status` or `status.stage`. */
function definitionLeaves(): string[] {
  const states = lifecycle.machine.config.states as Record<string, { states?: Record<string, unknown> }>;
  return Object.entries(states).flatMap(([status, config]) =>
    config.states ? Object.keys(config.states).map((stage) => `${status}.${stage}`) : [status],
  );
}

interface Schema {
  enum?: Array<string | null>;
  $ref?: string;
  items?: Schema;
  allOf?: Schema[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  properties?: Record<string, Schema>;
}

interface OpenApi {
  components: { schemas: Record<string, Schema | undefined> };
}

function readOpenApi(): OpenApi {
  return parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as OpenApi;
}

/** A schema's enum, following one `$ref` to a component schema (and `items` of an array). */
function enumOf(spec: OpenApi, schema: Schema | undefined): Array<string | null> | undefined {
  if (!schema) return undefined;
  if (schema.items) return enumOf(spec, schema.items);
  if (typeof schema.$ref === 'string') {
    const name = schema.$ref.replace('#/components/schemas/', '');
    return enumOf(spec, spec.components.schemas[name]);
  }
  for (const parts of [schema.allOf, schema.anyOf, schema.oneOf]) {
    if (!Array.isArray(parts)) continue;
    for (const part of parts) {
      const found = enumOf(spec, part)?.filter((item) => item !== null);
      if (found?.length) return found;
    }
  }
  return schema.enum;
}

describe('payout machine v2', () => {
  describe('public lists', () => {
    it('is machine version 2', () => {
      expect(PAYOUT_MACHINE_VERSION).to.equal(2);
    });

    it('has exactly the five statuses, three of them final', () => {
      expect(PAYOUT_STATUSES).to.deep.equal(['created', 'processing', 'completed', 'failed', 'cancelled']);
      expect(FINAL_STATUSES).to.deep.equal(['completed', 'failed', 'cancelled']);
      expect(UNFINISHED_STATUSES).to.deep.equal(['created', 'processing']);
    });

    it('has exactly the five stages', () => {
      expect(PAYOUT_STAGES).to.deep.equal([
        'queued',
        'needs_attention',
        'submitting',
        'voiding',
        'confirming',
      ]);
    });

    it('has exactly the eleven event types and the four API actions', () => {
      expect([...PAYOUT_EVENT_TYPES].sort()).to.deep.equal(
        [
          'START',
          'CANCEL',
          'SUCCEED',
          'FAIL',
          'RETRY',
          'REDRIVE',
          'DEAD_LETTERED',
          'PROVIDER_SUCCEEDED',
          'PROVIDER_FAILED',
          'PROVIDER_NOT_FOUND',
          'PROVIDER_UNAVAILABLE',
        ].sort(),
      );
      expect(PAYOUT_ACTIONS).to.deep.equal(['cancel', 'succeed', 'fail', 'retry']);
    });

    it('has exactly the leaf states the tests build snapshots for', () => {
      expect(definitionLeaves()).to.have.members([...STATE_KEYS]);
      expect(definitionLeaves()).to.have.lengthOf(STATE_KEYS.length);
    });

    it('builds a snapshot in every state, done exactly in the final ones', () => {
      for (const state of STATE_KEYS) {
        const snapshot = snapshotIn(lifecycle, state);
        expect(snapshot.value, state).to.deep.equal(valueOf(state));
        expect(keyOf(lifecycle.stateOf(snapshot)), state).to.equal(state);
        const final = FINAL_STATUSES.includes(lifecycle.stateOf(snapshot).status);
        expect(snapshot.status, state).to.equal(final ? 'done' : 'active');
        expect(lifecycle.stateOf(snapshot).stage === null, state).to.equal(final);
      }
    });
  });

  describe('openapi.yaml', () => {
    const spec = readOpenApi();
    const schemas = spec.components.schemas;

    it('PayoutStatus enum equals PAYOUT_STATUSES', () => {
      expect(schemas.PayoutStatus?.enum).to.deep.equal(PAYOUT_STATUSES);
    });

    it('the stage enum (PayoutStage, or Payout.stage) equals PAYOUT_STAGES', () => {
      const stages = schemas.PayoutStage
        ? enumOf(spec, schemas.PayoutStage)
        : enumOf(spec, schemas.Payout?.properties?.stage);
      expect(stages, 'no PayoutStage schema and no enum on Payout.stage').to.be.an('array');
      expect(stages).to.deep.equal(PAYOUT_STAGES);
    });

    it('available_actions enum equals PAYOUT_ACTIONS', () => {
      const actions = enumOf(spec, schemas.Payout?.properties?.available_actions);
      expect(actions).to.deep.equal(PAYOUT_ACTIONS);
    });
  });

  describe('decide: every state × event type × role against the hand-written lifecycle', () => {
    it('the hand-written table names only real states and event types', () => {
      for (const [key, target] of Object.entries(EXPECTED)) {
        const [state, type] = key.split(' ') as [StateKey, PayoutEventType];
        expect(STATE_KEYS, key).to.include(state);
        expect(STATE_KEYS, key).to.include(target);
        expect(PAYOUT_EVENT_TYPES, key).to.include(type);
      }
    });

    for (const state of STATE_KEYS) {
      for (const type of PAYOUT_EVENT_TYPES) {
        for (const role of ALL_ROLES) {
          const allowed = specAllows(role, type);
          const target = EXPECTED[`${state} ${type}`];
          const expected = !allowed ? 'forbidden' : (target ?? 'not_now');
          it(`${state} + ${type} from ${role} → ${expected}`, () => {
            const snapshot = snapshotIn(lifecycle, state);
            const event = eventOf(type, role, { seq: outstandingSeq(snapshot) });
            const decision = lifecycle.decide(snapshot, event);
            if (!allowed) {
              expect(decision).to.deep.equal({ accepted: false, refusal: 'forbidden' });
              // Forbidden whatever the payload: no reason does not turn it into a 400.
              expect(lifecycle.decide(snapshot, eventOf(type, role, { reason: null, seq: 0 }))).to.deep.equal(
                {
                  accepted: false,
                  refusal: 'forbidden',
                },
              );
              return;
            }
            if (target === undefined) {
              expect(decision).to.deep.equal({ accepted: false, refusal: 'not_now' });
              // An event that always needs a reason is a bad request without one, in whatever state.
              expect(lifecycle.decide(snapshot, eventOf(type, role, { reason: null, seq: 0 }))).to.deep.equal(
                {
                  accepted: false,
                  refusal: REASON_REQUIRED.includes(type) ? 'reason_required' : 'not_now',
                },
              );
              return;
            }
            expect(decision.accepted, JSON.stringify(decision)).to.equal(true);
            if (!decision.accepted) return;
            expect(keyOf(decision.next)).to.equal(target);
            // The stored snapshot restores to the same state and context.
            const restored = lifecycle.restore(decision.next.snapshot, PAYOUT_MACHINE_VERSION);
            expect(keyOf(lifecycle.stateOf(restored))).to.equal(target);
            expect(restored.context).to.deep.equal(decision.next.context);
            // Every command emitted is the outstanding one afterwards (at most one is outstanding).
            expect(decision.commands.length).to.be.at.most(1);
            for (const command of decision.commands) {
              expect(command.seq).to.equal(decision.next.context.command?.seq);
            }
            if (REASON_REQUIRED.includes(type)) {
              for (const reason of [null, '', '   ']) {
                expect(
                  lifecycle.decide(snapshot, eventOf(type, role, { reason })),
                  `reason ${JSON.stringify(reason)}`,
                ).to.deep.equal({ accepted: false, refusal: 'reason_required' });
              }
            } else if (type === 'CANCEL') {
              const withoutReason = lifecycle.decide(snapshot, eventOf(type, role, { reason: null }));
              expect(withoutReason.accepted).to.equal(true);
            }
          });
        }
      }
    }
  });

  describe('decide is pure', () => {
    it('leaves the snapshot it is given unchanged, accepted or refused', () => {
      let decisions = 0;
      for (const state of STATE_KEYS) {
        for (const type of PAYOUT_EVENT_TYPES) {
          for (const role of ALL_ROLES) {
            const snapshot = snapshotIn(lifecycle, state);
            const persisted = (): unknown =>
              JSON.parse(JSON.stringify(lifecycle.machine.getPersistedSnapshot(snapshot)));
            const before = persisted();
            const context = structuredClone(snapshot.context);
            lifecycle.decide(snapshot, eventOf(type, role, { seq: outstandingSeq(snapshot) }));
            lifecycle.decide(snapshot, eventOf(type, role, { seq: outstandingSeq(snapshot), reason: null }));
            expect(persisted(), `${state} ${type} ${role}`).to.deep.equal(before);
            expect(snapshot.context, `${state} ${type} ${role}`).to.deep.equal(context);
            expect(snapshot.value).to.deep.equal(valueOf(state));
            decisions += 1;
          }
        }
      }
      expect(decisions).to.equal(STATE_KEYS.length * PAYOUT_EVENT_TYPES.length * ALL_ROLES.length);
    });

    it('gives the same decision twice for the same snapshot and event', () => {
      const snapshot = snapshotIn(lifecycle, 'processing.submitting');
      const event = eventOf('PROVIDER_UNAVAILABLE', 'worker', { seq: 2 });
      const first = lifecycle.decide(snapshot, event);
      const second = lifecycle.decide(snapshot, event);
      expect(second).to.deep.equal(first);
    });
  });

  describe('actionsFor', () => {
    it('lists what the role may do in the named states', () => {
      expect(lifecycle.actionsFor('created', 'queued', 'client')).to.deep.equal(['cancel']);
      expect(lifecycle.actionsFor('created', 'queued', 'operator')).to.deep.equal(['cancel']);
      expect(lifecycle.actionsFor('created', 'needs_attention', 'client')).to.deep.equal(['cancel']);
      expect(lifecycle.actionsFor('created', 'needs_attention', 'operator')).to.have.members([
        'cancel',
        'retry',
      ]);
      expect(lifecycle.actionsFor('processing', 'submitting', 'operator')).to.deep.equal(['succeed', 'fail']);
      expect(lifecycle.actionsFor('processing', 'submitting', 'client')).to.deep.equal([]);
      expect(lifecycle.actionsFor('processing', 'needs_attention', 'operator')).to.deep.equal([
        'succeed',
        'fail',
        'retry',
      ]);
      expect(lifecycle.actionsFor('processing', 'voiding', 'operator')).to.deep.equal([]);
      for (const status of FINAL_STATUSES) {
        for (const role of ALL_ROLES) {
          expect(lifecycle.actionsFor(status, null, role), `${status} ${role}`).to.deep.equal([]);
        }
      }
    });

    it('gives the worker and the system no API actions anywhere', () => {
      for (const state of STATE_KEYS) {
        const { status, stage } = lifecycle.stateOf(snapshotIn(lifecycle, state));
        expect(lifecycle.actionsFor(status, stage, 'worker'), state).to.deep.equal([]);
        expect(lifecycle.actionsFor(status, stage, 'system'), state).to.deep.equal([]);
      }
    });

    it('agrees with decide for every state × role × action', () => {
      let checked = 0;
      for (const state of STATE_KEYS) {
        const snapshot = snapshotIn(lifecycle, state);
        const { status, stage } = lifecycle.stateOf(snapshot);
        for (const role of ALL_ROLES) {
          const listed = lifecycle.actionsFor(status, stage, role);
          for (const action of PAYOUT_ACTIONS) {
            const decision = lifecycle.decide(snapshot, eventOf(ACTION_EVENT[action], role));
            expect(listed.includes(action), `${state} ${role} ${action}`).to.equal(decision.accepted);
            // And with the hand-written table: an action is offered exactly where the lifecycle takes it.
            const inTable =
              specAllows(role, ACTION_EVENT[action]) && `${state} ${ACTION_EVENT[action]}` in EXPECTED;
            expect(listed.includes(action), `${state} ${role} ${action} (table)`).to.equal(inTable);
            checked += 1;
          }
        }
      }
      expect(checked).to.equal(STATE_KEYS.length * ALL_ROLES.length * PAYOUT_ACTIONS.length);
    });

    it('lists the actions in PAYOUT_ACTIONS order', () => {
      for (const state of STATE_KEYS) {
        const { status, stage } = lifecycle.stateOf(snapshotIn(lifecycle, state));
        const listed = lifecycle.actionsFor(status, stage, 'operator');
        expect(listed, state).to.deep.equal(PAYOUT_ACTIONS.filter((action) => listed.includes(action)));
      }
    });
  });
});

describe('the machine as documented', () => {
  it('openapi.yaml shows GET /api/machine answering exactly the served definition', async () => {
    const { readFileSync } = await import('node:fs');
    const { parse } = await import('yaml');
    const { machineDefinition } = await import('../../src/machines/definition.js');
    const spec = parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as {
      paths: Record<
        string,
        { get: { responses: Record<string, { content: Record<string, { example: unknown }> }> } }
      >;
    };
    const example = spec.paths['/api/machine']!.get.responses['200']!.content['application/json']!.example;
    expect(example).to.deep.equal(machineDefinition());
  });
});
