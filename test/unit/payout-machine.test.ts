import { readFileSync } from 'node:fs';
import { getShortestPaths } from '@xstate/graph';
import { expect } from 'chai';
import type { PayoutEvent, PayoutSnapshot, PayoutStatus } from '../../src/machines/payout.machine.js';
import {
  FINAL_STATUSES,
  PAYOUT_EVENT_TYPES,
  PAYOUT_MACHINE_VERSION,
  PAYOUT_STATUSES,
  PAYOUT_TRANSITIONS,
  acceptedEvents,
  eventInto,
  initialPayoutSnapshot,
  nextPayoutSnapshot,
  payoutMachine,
  persistPayoutSnapshot,
  restorePayoutSnapshot,
  sampleEvent,
  statusAfter,
  statusOf,
} from '../../src/machines/payout.machine.js';

/** The lifecycle of SPEC.md, as (from, event) → to. Everything not listed must be refused. */
const SPEC_TRANSITIONS: Record<string, PayoutStatus> = {
  'created START': 'processing',
  'created CANCEL': 'cancelled',
  'processing SUCCEED': 'completed',
  'processing FAIL': 'failed',
};

/** Every reachable state of the machine with a snapshot in it, found by walking the machine's own graph. */
function reachableSnapshots(): Map<PayoutStatus, PayoutSnapshot> {
  const paths = getShortestPaths(payoutMachine, { events: PAYOUT_EVENT_TYPES.map(sampleEvent) });
  return new Map(paths.map((path) => [statusOf(path.state), path.state]));
}

describe('payout machine', () => {
  const snapshots = reachableSnapshots();

  it('reaches exactly the five statuses of the spec, three of them final', () => {
    expect([...snapshots.keys()].sort()).to.deep.equal([...PAYOUT_STATUSES].sort());
    for (const [status, snapshot] of snapshots) {
      expect(snapshot.status === 'done', status).to.equal(FINAL_STATUSES.includes(status));
    }
  });

  describe('every (state, event) pair, generated from the machine', () => {
    for (const status of PAYOUT_STATUSES) {
      for (const type of PAYOUT_EVENT_TYPES) {
        const expected = SPEC_TRANSITIONS[`${status} ${type}`];
        it(`${status} + ${type} → ${expected ?? 'refused'}`, () => {
          const snapshot = snapshots.get(status)!;
          const event = sampleEvent(type);
          const next = nextPayoutSnapshot(snapshot, event);
          if (expected === undefined) {
            expect(snapshot.can(event)).to.equal(false);
            expect(next).to.equal(null);
          } else {
            expect(snapshot.can(event)).to.equal(true);
            expect(statusOf(next!)).to.equal(expected);
            // The step survives persistence: what is stored restores to the same state and context.
            const restored = restorePayoutSnapshot(persistPayoutSnapshot(next!), PAYOUT_MACHINE_VERSION);
            expect(statusOf(restored)).to.equal(expected);
            expect(restored.context).to.deep.equal(next!.context);
          }
        });
      }
    }
  });

  it('lists accepted events per state exactly as the spec', () => {
    for (const [status, snapshot] of snapshots) {
      const fromSpec = Object.keys(SPEC_TRANSITIONS)
        .filter((key) => key.startsWith(`${status} `))
        .map((key) => key.split(' ')[1]);
      expect(acceptedEvents(snapshot).sort(), status).to.deep.equal(fromSpec.sort());
    }
  });

  it('reads the transitions off its definition, one event into each status', () => {
    const listed = Object.fromEntries(
      PAYOUT_TRANSITIONS.map((step) => [`${step.from} ${step.event}`, step.to]),
    );
    expect(listed).to.deep.equal(SPEC_TRANSITIONS);
    expect(PAYOUT_STATUSES.map((status) => eventInto(status))).to.deep.equal([
      undefined,
      'START',
      'SUCCEED',
      'FAIL',
      'CANCEL',
    ]);
    expect(PAYOUT_EVENT_TYPES.map((event) => statusAfter(event))).to.deep.equal([
      'processing',
      'completed',
      'failed',
      'cancelled',
    ]);
  });

  it('records the failure code and message on FAIL and nothing otherwise', () => {
    const processing = nextPayoutSnapshot(initialPayoutSnapshot(), { type: 'START' })!;
    const failed = nextPayoutSnapshot(processing, {
      type: 'FAIL',
      code: 'recipient_blocked',
      message: 'Blocked',
    })!;
    expect(failed.context.failure).to.deep.equal({ code: 'recipient_blocked', message: 'Blocked' });
    expect(nextPayoutSnapshot(processing, { type: 'SUCCEED' })!.context.failure).to.equal(null);
  });

  it('does not mutate the snapshot it steps from', () => {
    const created = initialPayoutSnapshot();
    const before = JSON.stringify(persistPayoutSnapshot(created));
    nextPayoutSnapshot(created, { type: 'START' } satisfies PayoutEvent);
    expect(JSON.stringify(persistPayoutSnapshot(created))).to.equal(before);
  });

  it('keeps loading the stored snapshot fixture of machine version 1', () => {
    // Written by machine version 1 and committed: if an XState upgrade changes the persisted format, this fails
    // before any stored payout becomes unreadable.
    const fixture = JSON.parse(
      readFileSync(new URL('../fixtures/payout-snapshot.v1.json', import.meta.url), 'utf8'),
    ) as { machine_version: number; snapshot: Record<string, unknown> };
    const restored = restorePayoutSnapshot(fixture.snapshot, fixture.machine_version);
    expect(statusOf(restored)).to.equal('processing');
    expect(acceptedEvents(restored).sort()).to.deep.equal(['FAIL', 'SUCCEED']);
    const failed = nextPayoutSnapshot(restored, { type: 'FAIL', code: 'x', message: 'y' })!;
    expect(statusOf(failed)).to.equal('failed');
  });

  it('refuses a snapshot of an unknown machine version', () => {
    expect(() => restorePayoutSnapshot(persistPayoutSnapshot(initialPayoutSnapshot()), 99)).to.throw(
      /version 99/,
    );
  });
});
