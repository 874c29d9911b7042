/**
 * Snapshots stored by machine version 1 (committed fixtures, written by the v1 machine) restored by version 2:
 * `processing` has its submit outstanding as command 1, `created` its processing message, the finals keep their
 * status and failure and accept nothing. The same fixtures also pin XState's persisted format.
 */
import { expect } from 'chai';
import {
  FINAL_STATUSES,
  PAYOUT_EVENT_TYPES,
  PAYOUT_MACHINE_VERSION,
  PayoutLifecycle,
  upgradeV1,
} from '../../src/machines/payout-lifecycle.js';
import { ALL_ROLES, Story, eventOf, keyOf, readFixture } from './payout-kit.js';

const lifecycle = new PayoutLifecycle();

const FIXTURES = {
  processing: 'payout-snapshot.v1.json',
  created: 'payout-snapshot.v1.created.json',
  completed: 'payout-snapshot.v1.completed.json',
  failed: 'payout-snapshot.v1.failed.json',
  cancelled: 'payout-snapshot.v1.cancelled.json',
} as const;

function restoreFixture(name: string) {
  const fixture = readFixture(name);
  expect(fixture.machine_version).to.equal(1);
  return lifecycle.restore(fixture.snapshot, fixture.machine_version);
}

describe('payout machine: the v1 upgrade', () => {
  it('the fixtures are v1 snapshots of each state, final ones done', () => {
    for (const [state, name] of Object.entries(FIXTURES)) {
      const { snapshot } = readFixture(name);
      expect(snapshot.value, name).to.equal(state);
      expect(snapshot.status, name).to.equal(
        state === 'created' || state === 'processing' ? 'active' : 'done',
      );
      expect(Object.keys(snapshot.context as object), name).to.deep.equal(['failure']);
    }
  });

  it('v1 processing → processing.submitting with submit 1 outstanding, under the payout’s own key', () => {
    const restored = restoreFixture(FIXTURES.processing);
    const state = lifecycle.stateOf(restored);
    expect(keyOf(state)).to.equal('processing.submitting');
    expect(restored.status).to.equal('active');
    // Exactly these fields: nothing in the snapshot names another provider key than the payout id.
    expect(restored.context.command).to.deep.equal({ seq: 1, type: 'submit', try: 1, delay_ms: 0 });
    expect(restored.context).to.deep.equal({
      failure: null,
      attempts: 1,
      redrives: 0,
      commands: 1,
      command: { seq: 1, type: 'submit', try: 1, delay_ms: 0 },
      request: null,
      last_error: null,
    });
  });

  it('v1 processing: PROVIDER_SUCCEEDED for command 1 completes it', () => {
    const story = new Story(lifecycle, restoreFixture(FIXTURES.processing));
    expect(story.refusal('PROVIDER_SUCCEEDED', 'worker', { seq: 2 })).to.equal('not_now');
    const decision = story.answer('PROVIDER_SUCCEEDED');
    expect(decision.next.status).to.equal('completed');
    expect(decision.settled).to.equal(1);
    expect(decision.commands).to.deep.equal([]);
  });

  it('v1 processing: an outage retries as submit 2 (try 2), numbered after the v1 command', () => {
    const story = new Story(lifecycle, restoreFixture(FIXTURES.processing));
    const decision = story.answer('PROVIDER_UNAVAILABLE');
    expect(decision.commands).to.deep.equal([{ seq: 2, type: 'submit', try: 2, delay_ms: 1000 }]);
    expect(decision.settled).to.equal(1);
  });

  it('v1 processing: an operator may ask to fail it, as any payout in submitting', () => {
    const story = new Story(lifecycle, restoreFixture(FIXTURES.processing));
    expect(story.step('FAIL', 'operator', { reason: 'duplicate' }).next.stage).to.equal('submitting');
    expect(story.answer('PROVIDER_UNAVAILABLE').commands[0]).to.deep.include({ seq: 2, type: 'void' });
  });

  it('v1 created → created.queued with process 1 outstanding; START works', () => {
    const restored = restoreFixture(FIXTURES.created);
    expect(keyOf(lifecycle.stateOf(restored))).to.equal('created.queued');
    expect(restored.context.command).to.deep.equal({ seq: 1, type: 'process', try: 1, delay_ms: 0 });
    expect(restored.context).to.deep.equal(lifecycle.initial().context);
    const story = new Story(lifecycle, restored);
    const decision = story.step('START', 'worker');
    expect(keyOf(decision.next)).to.equal('processing.submitting');
    expect(decision.commands).to.deep.equal([{ seq: 2, type: 'submit', try: 1, delay_ms: 0 }]);
    expect(decision.settled).to.equal(1);
  });

  it('v1 created: the client may still cancel it', () => {
    const story = new Story(lifecycle, restoreFixture(FIXTURES.created));
    expect(story.step('CANCEL', 'client').next.status).to.equal('cancelled');
  });

  for (const status of ['completed', 'failed', 'cancelled'] as const) {
    it(`v1 ${status} keeps its status and failure and accepts nothing`, () => {
      const fixture = readFixture(FIXTURES[status]);
      const restored = restoreFixture(FIXTURES[status]);
      const state = lifecycle.stateOf(restored);
      expect(state.status).to.equal(status);
      expect(state.stage).to.equal(null);
      expect(FINAL_STATUSES).to.include(state.status);
      expect(restored.status).to.equal('done');
      expect(restored.context.failure).to.deep.equal(
        (fixture.snapshot.context as { failure: unknown }).failure,
      );
      expect(restored.context.command).to.equal(null);
      if (status === 'failed') {
        expect(restored.context.failure).to.deep.equal({
          code: 'provider_refused',
          message: 'The provider refused the payout',
        });
      } else {
        expect(restored.context.failure).to.equal(null);
      }
      for (const type of PAYOUT_EVENT_TYPES) {
        for (const role of ALL_ROLES) {
          for (const seq of [0, 1, 2]) {
            const decision = lifecycle.decide(restored, eventOf(type, role, { seq }));
            expect(decision.accepted, `${status} ${type} ${role} ${seq}`).to.equal(false);
          }
        }
      }
      for (const role of ALL_ROLES) {
        expect(lifecycle.actionsFor(state.status, state.stage, role)).to.deep.equal([]);
      }
    });
  }

  it('an upgraded snapshot is stored as version 2 and restores from there unchanged', () => {
    for (const name of Object.values(FIXTURES)) {
      const upgraded = lifecycle.stateOf(restoreFixture(name));
      const again = lifecycle.restore(JSON.parse(JSON.stringify(upgraded.snapshot)), PAYOUT_MACHINE_VERSION);
      expect(keyOf(lifecycle.stateOf(again)), name).to.equal(keyOf(upgraded));
      expect(again.context, name).to.deep.equal(upgraded.context);
      expect(again.status, name).to.equal(
        upgraded.status === 'created' || upgraded.status === 'processing' ? 'active' : 'done',
      );
    }
  });

  it('upgradeV1 refuses a state v1 never had', () => {
    expect(() => upgradeV1({ status: 'active', value: 'submitting', context: { failure: null } })).to.throw(
      /unknown state/,
    );
  });

  it('refuses a snapshot of an unknown machine version', () => {
    const { snapshot } = readFixture(FIXTURES.processing);
    expect(() => lifecycle.restore(snapshot, 99)).to.throw(/version 99/);
    expect(() => lifecycle.restore(lifecycle.initial().snapshot, 3)).to.throw(/version 3/);
    expect(() => lifecycle.restore(lifecycle.initial().snapshot, 0)).to.throw(/version 0/);
  });
});
