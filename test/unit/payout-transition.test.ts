/**
 * `PayoutLifecycle.decide` steps the machine with one reused inert actor scope instead of xstate's `transition()`,
 * and `restore` rehydrates through the same scope instead of `createActor(machine, { snapshot })`; both of xstate's
 * own build a throwaway actor per call. This pins the shortcuts to the library: for every state × event type ×
 * role (with a reason and the outstanding command's number, so that accepted events are among them), the next
 * snapshot and the effects equal what `transition()` itself returns, and every stored snapshot restores to what
 * `createActor` restores it to. A new xstate that changes how a scope is used fails here.
 */
import { expect } from 'chai';
import { createActor, transition } from 'xstate';
import {
  PAYOUT_EVENT_TYPES,
  PAYOUT_MACHINE_VERSION,
  PayoutLifecycle,
} from '../../src/machines/payout-lifecycle.js';
import { ALL_ROLES, STATE_KEYS, eventOf, outstandingSeq, snapshotIn } from './payout-kit.js';

/** The effects of a transition's actions, as `decide` reads them: emitted events. */
function emitted(actions: Array<{ type: string; params?: unknown }>): unknown[] {
  return actions
    .filter((action) => action.type === 'xstate.emit')
    .map((action) => (action.params as { event: unknown }).event);
}

describe('payout machine: decide steps exactly as xstate’s transition()', () => {
  const lifecycle = new PayoutLifecycle({ retryDelaysMs: [10, 20], maxRedrives: 2 });

  it('agrees for every state × event type × role', () => {
    let accepted = 0;
    for (const state of STATE_KEYS) {
      for (const type of PAYOUT_EVENT_TYPES) {
        for (const role of ALL_ROLES) {
          const snapshot = snapshotIn(lifecycle, state);
          const event = eventOf(type, role, { seq: outstandingSeq(snapshot) });
          const decision = lifecycle.decide(snapshot, event);
          if (!decision.accepted) continue;
          accepted += 1;
          const [next, actions] = transition(lifecycle.machine, snapshot, event);
          expect(decision.next.snapshot, `${state} ${type} ${role}`).to.deep.equal(
            lifecycle.machine.getPersistedSnapshot(next),
          );
          expect(decision.commands, `${state} ${type} ${role}`).to.deep.equal(
            emitted(actions).map((effect) => (effect as { command: unknown }).command),
          );
        }
      }
    }
    // The table reached the accepted events too, not only refusals.
    expect(accepted).to.be.greaterThan(20);
  });

  it('restores every stored snapshot as createActor does: the same state, and the same answer to every event', () => {
    for (const state of STATE_KEYS) {
      const stored = lifecycle.machine.getPersistedSnapshot(snapshotIn(lifecycle, state));
      const ours = lifecycle.restore(structuredClone(stored), PAYOUT_MACHINE_VERSION);
      const theirs = createActor(lifecycle.machine, { snapshot: structuredClone(stored) }).getSnapshot();
      expect(ours.value, state).to.deep.equal(theirs.value);
      expect(ours.status, state).to.equal(theirs.status);
      expect(ours.context, state).to.deep.equal(theirs.context);
      expect(lifecycle.machine.getPersistedSnapshot(ours), state).to.deep.equal(stored);
      for (const type of PAYOUT_EVENT_TYPES) {
        for (const role of ALL_ROLES) {
          const event = eventOf(type, role, { seq: outstandingSeq(theirs) });
          expect(ours.can(event), `${state} ${type} ${role}`).to.equal(theirs.can(event));
          if (!theirs.can(event)) continue;
          expect(
            lifecycle.machine.getPersistedSnapshot(transition(lifecycle.machine, ours, event)[0]),
            `${state} ${type} ${role}`,
          ).to.deep.equal(
            lifecycle.machine.getPersistedSnapshot(transition(lifecycle.machine, theirs, event)[0]),
          );
        }
      }
    }
  });

  it('keeps nothing between two decisions: the same decision twice gives the same effects', () => {
    const snapshot = snapshotIn(lifecycle, 'created.queued');
    const event = eventOf('START', 'worker');
    const first = lifecycle.decide(snapshot, event);
    const second = lifecycle.decide(snapshot, event);
    expect(second).to.deep.equal(first);
  });
});
