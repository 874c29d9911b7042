/**
 * The payout machine's effects, step by step through the stored form: the commands it issues (retry schedule,
 * voids, status checks), stale and duplicate results, operators' requests in flight, and the path through
 * `needs_attention`. A small policy keeps the numbers visible.
 */
import { expect } from 'chai';
import { OPERATOR_FAILED_CODE, RETRIES_EXHAUSTED } from '../../src/machines/payout.machine.js';
import type { PayoutEventType } from '../../src/machines/payout.machine.js';
import { PayoutLifecycle } from '../../src/machines/payout-lifecycle.js';
import type { StateKey } from './payout-kit.js';
import { PROVIDER_REFUSAL, Story, eventOf, outstandingSeq, snapshotIn } from './payout-kit.js';

const policy = { retryDelaysMs: [10, 20], maxRedrives: 2 };
const lifecycle = new PayoutLifecycle(policy);

const REASON = 'the bank confirmed it returned the money';

/** A payout that has been started: its submit (command 2) is outstanding. */
function started(): Story {
  const story = new Story(lifecycle);
  story.step('START', 'worker');
  return story;
}

/** A started payout whose submit's message was dead-lettered: a person must decide. */
function needingAttention(): Story {
  const story = started();
  story.step('DEAD_LETTERED', 'worker');
  expect(story.state).to.equal('processing.needs_attention');
  return story;
}

describe('payout lifecycle: effects', () => {
  describe('a new payout', () => {
    it('starts with its processing message as command 1', () => {
      const initial = lifecycle.initial();
      expect(initial.status).to.equal('created');
      expect(initial.stage).to.equal('queued');
      expect(initial.context).to.deep.equal({
        failure: null,
        attempts: 0,
        redrives: 0,
        commands: 1,
        command: { seq: 1, type: 'process', try: 1, delay_ms: 0 },
        request: null,
        last_error: null,
      });
    });

    it('START issues one submit (seq 2, try 1, at once) and settles the processing message', () => {
      const story = new Story(lifecycle);
      const decision = story.step('START', 'worker');
      expect(decision.next.status).to.equal('processing');
      expect(decision.next.stage).to.equal('submitting');
      expect(decision.commands).to.deep.equal([{ seq: 2, type: 'submit', try: 1, delay_ms: 0 }]);
      expect(decision.settled).to.equal(1);
      expect(decision.overruled).to.equal(null);
      expect(decision.next.context.command).to.deep.equal({ seq: 2, type: 'submit', try: 1, delay_ms: 0 });
      expect(decision.next.context.commands).to.equal(2);
      expect(decision.next.context.attempts).to.equal(1);
    });

    it('a second START is refused', () => {
      const story = started();
      expect(story.refusal('START', 'worker')).to.equal('not_now');
    });

    it('CANCEL settles the processing message and issues nothing', () => {
      const story = new Story(lifecycle);
      const decision = story.step('CANCEL', 'client', { reason: null });
      expect(decision.next.status).to.equal('cancelled');
      expect(decision.next.stage).to.equal(null);
      expect(decision.commands).to.deep.equal([]);
      expect(decision.settled).to.equal(1);
      expect(decision.next.context.command).to.equal(null);
    });
  });

  describe('provider outages: the retry schedule of the policy', () => {
    it('retries the submit with the policy delays, then voids with retries_exhausted', () => {
      const story = started();

      let decision = story.answer('PROVIDER_UNAVAILABLE', { message: 'timeout 1' });
      expect(decision.next.stage).to.equal('submitting');
      expect(decision.commands).to.deep.equal([{ seq: 3, type: 'submit', try: 2, delay_ms: 10 }]);
      expect(decision.settled).to.equal(2);
      expect(decision.next.context.attempts).to.equal(2);
      expect(decision.next.context.last_error).to.deep.equal({
        code: 'provider_unavailable',
        message: 'timeout 1',
        at: '2026-12-01T10:00:00.000Z',
      });

      decision = story.answer('PROVIDER_UNAVAILABLE');
      expect(decision.next.stage).to.equal('submitting');
      expect(decision.commands).to.deep.equal([{ seq: 4, type: 'submit', try: 3, delay_ms: 20 }]);
      expect(decision.settled).to.equal(3);
      expect(decision.next.context.attempts).to.equal(3);

      // Two retries (one per delay of the policy): the unavailability of the third try gives up and voids.
      decision = story.answer('PROVIDER_UNAVAILABLE');
      expect(decision.next.status).to.equal('processing');
      expect(decision.next.stage).to.equal('voiding');
      expect(decision.commands).to.deep.equal([
        { seq: 5, type: 'void', try: 1, delay_ms: 0, failure: RETRIES_EXHAUSTED },
      ]);
      expect(decision.commands[0]!.failure!.code).to.equal('retries_exhausted');
      expect(decision.settled).to.equal(4);
      expect(decision.next.context.attempts).to.equal(3);
      expect(decision.next.context.failure).to.equal(null);
    });

    it('voiding + PROVIDER_FAILED → failed with the failure the void carried', () => {
      const story = started();
      for (let i = 0; i < 3; i += 1) story.answer('PROVIDER_UNAVAILABLE');
      expect(story.state).to.equal('processing.voiding');
      const failure = story.snapshot.context.command!.failure!;
      const decision = story.answer('PROVIDER_FAILED', { failure });
      expect(decision.next.status).to.equal('failed');
      expect(decision.next.stage).to.equal(null);
      expect(decision.next.context.failure).to.deep.equal(RETRIES_EXHAUSTED);
      expect(decision.commands).to.deep.equal([]);
      expect(decision.settled).to.equal(5);
      expect(decision.overruled).to.equal(null);
      expect(decision.next.context.command).to.equal(null);
      expect(decision.next.snapshot.status).to.equal('done');
    });

    it('voiding + PROVIDER_SUCCEEDED → completed (the payment wins); nobody asked otherwise, so no overrule', () => {
      const story = started();
      for (let i = 0; i < 3; i += 1) story.answer('PROVIDER_UNAVAILABLE');
      const decision = story.answer('PROVIDER_SUCCEEDED');
      expect(decision.next.status).to.equal('completed');
      expect(decision.next.context.failure).to.equal(null);
      expect(decision.overruled).to.equal(null);
      expect(decision.settled).to.equal(5);
    });

    it('retries the void with the same failure and the policy delays, then needs attention', () => {
      const story = started();
      for (let i = 0; i < 3; i += 1) story.answer('PROVIDER_UNAVAILABLE');
      let decision = story.answer('PROVIDER_UNAVAILABLE');
      expect(decision.next.stage).to.equal('voiding');
      expect(decision.commands).to.deep.equal([
        { seq: 6, type: 'void', try: 2, delay_ms: 10, failure: RETRIES_EXHAUSTED },
      ]);
      decision = story.answer('PROVIDER_UNAVAILABLE');
      expect(decision.commands).to.deep.equal([
        { seq: 7, type: 'void', try: 3, delay_ms: 20, failure: RETRIES_EXHAUSTED },
      ]);
      // Submits are counted as attempts; voids are not.
      expect(decision.next.context.attempts).to.equal(3);
      decision = story.answer('PROVIDER_UNAVAILABLE');
      expect(decision.next.stage).to.equal('needs_attention');
      expect(decision.commands).to.deep.equal([]);
      // The void is still outstanding: its late answer settles the payout.
      expect(story.seq).to.equal(7);
      expect(story.answer('PROVIDER_FAILED', { failure: RETRIES_EXHAUSTED }).next.status).to.equal('failed');
    });

    it('a default-policy lifecycle uses the default schedule', () => {
      const defaults = new PayoutLifecycle();
      const story = new Story(defaults);
      story.step('START', 'worker');
      const delays = [1, 2, 3].map(() => story.answer('PROVIDER_UNAVAILABLE').commands[0]!.delay_ms);
      expect(delays).to.deep.equal([1000, 5000, 30000]);
      expect(story.answer('PROVIDER_UNAVAILABLE').next.stage).to.equal('voiding');
    });
  });

  describe('stale and duplicate results', () => {
    const RESULTS: PayoutEventType[] = [
      'PROVIDER_SUCCEEDED',
      'PROVIDER_FAILED',
      'PROVIDER_NOT_FOUND',
      'PROVIDER_UNAVAILABLE',
    ];
    const PROCESSING: StateKey[] = [
      'processing.submitting',
      'processing.needs_attention',
      'processing.voiding',
      'processing.confirming',
    ];

    for (const state of PROCESSING) {
      it(`${state}: a result for any other command than the outstanding one is refused (not_now)`, () => {
        const snapshot = snapshotIn(lifecycle, state);
        const seq = outstandingSeq(snapshot);
        expect(seq).to.be.greaterThan(0);
        for (const type of RESULTS) {
          for (const other of [0, 1, seq - 1, seq + 1, seq + 10]) {
            expect(
              lifecycle.decide(snapshot, eventOf(type, 'worker', { seq: other })),
              `${type} seq ${other}`,
            ).to.deep.equal({ accepted: false, refusal: 'not_now' });
          }
        }
        // The outstanding one itself settles it.
        const decision = lifecycle.decide(snapshot, eventOf('PROVIDER_SUCCEEDED', 'worker', { seq }));
        expect(decision.accepted && decision.next.status).to.equal('completed');
      });
    }

    it('the same result twice: the second is refused once the first settled the command', () => {
      const story = started();
      story.answer('PROVIDER_UNAVAILABLE'); // settles 2, issues 3
      expect(story.refusal('PROVIDER_UNAVAILABLE', 'worker', { seq: 2 })).to.equal('not_now');
      expect(story.refusal('PROVIDER_SUCCEEDED', 'worker', { seq: 2 })).to.equal('not_now');
      story.answer('PROVIDER_SUCCEEDED', { seq: 3 });
      expect(story.state).to.equal('completed');
      for (const type of RESULTS) {
        for (const seq of [2, 3]) {
          expect(story.refusal(type, 'worker', { seq }), `${type} ${seq}`).to.equal('not_now');
        }
      }
    });

    it('a result for a command replaced by an operator retry is refused', () => {
      const story = needingAttention();
      story.step('RETRY', 'operator', { reason: REASON });
      expect(story.seq).to.equal(3);
      expect(story.refusal('PROVIDER_SUCCEEDED', 'worker', { seq: 2 })).to.equal('not_now');
      expect(story.refusal('PROVIDER_FAILED', 'worker', { seq: 2 })).to.equal('not_now');
    });

    it('a status check answered twice: the duplicate NOT_FOUND is refused', () => {
      const story = started();
      story.step('SUCCEED', 'operator', { reason: REASON });
      story.answer('PROVIDER_UNAVAILABLE');
      expect(story.state).to.equal('processing.confirming');
      const statusSeq = story.seq;
      story.answer('PROVIDER_NOT_FOUND');
      expect(story.state).to.equal('processing.submitting');
      expect(story.refusal('PROVIDER_NOT_FOUND', 'worker', { seq: statusSeq })).to.equal('not_now');
    });
  });

  describe('operator requests while a command is in flight', () => {
    it('FAIL with a reason in submitting is recorded and issues nothing', () => {
      const story = started();
      const decision = story.step('FAIL', 'operator', { reason: REASON });
      expect(decision.next.status).to.equal('processing');
      expect(decision.next.stage).to.equal('submitting');
      expect(decision.commands).to.deep.equal([]);
      expect(decision.settled).to.equal(null);
      expect(decision.overruled).to.equal(null);
      expect(decision.next.context.request).to.deep.equal({
        action: 'fail',
        reason: REASON,
        by: { role: 'operator', id: 'operator-1' },
      });
      // The submit is still the outstanding command.
      expect(decision.next.context.command).to.deep.equal({ seq: 2, type: 'submit', try: 1, delay_ms: 0 });
    });

    it('FAIL, then the provider is unavailable → voiding, the void carrying the operator’s reason', () => {
      const story = started();
      story.step('FAIL', 'operator', { reason: REASON });
      const decision = story.answer('PROVIDER_UNAVAILABLE');
      expect(decision.next.stage).to.equal('voiding');
      expect(decision.commands).to.deep.equal([
        {
          seq: 3,
          type: 'void',
          try: 1,
          delay_ms: 0,
          failure: { code: OPERATOR_FAILED_CODE, message: REASON },
        },
      ]);
      expect(decision.commands[0]!.failure!.code).to.equal('operator_failed');
      expect(decision.settled).to.equal(2);
      // The void is the operator's failure: when the provider records it, the payout fails with it.
      const failed = story.answer('PROVIDER_FAILED', { failure: decision.commands[0]!.failure! });
      expect(failed.next.status).to.equal('failed');
      expect(failed.next.context.failure).to.deep.equal({ code: 'operator_failed', message: REASON });
      expect(failed.overruled).to.equal(null);
      expect(failed.next.context.request).to.equal(null);
    });

    it('FAIL, then the provider pays → completed, overruled', () => {
      const story = started();
      story.step('FAIL', 'operator', { reason: REASON });
      const decision = story.answer('PROVIDER_SUCCEEDED');
      expect(decision.next.status).to.equal('completed');
      expect(decision.overruled).to.deep.equal({ requested: 'fail', outcome: 'completed' });
      expect(decision.next.context.request).to.equal(null);
    });

    it('FAIL, unavailable, then the void finds a payment → completed, overruled', () => {
      const story = started();
      story.step('FAIL', 'operator', { reason: REASON });
      story.answer('PROVIDER_UNAVAILABLE');
      const decision = story.answer('PROVIDER_SUCCEEDED');
      expect(decision.next.status).to.equal('completed');
      expect(decision.overruled).to.deep.equal({ requested: 'fail', outcome: 'completed' });
    });

    it('FAIL, then the provider refuses → failed with the provider’s failure, not overruled', () => {
      const story = started();
      story.step('FAIL', 'operator', { reason: REASON });
      const decision = story.answer('PROVIDER_FAILED');
      expect(decision.next.status).to.equal('failed');
      expect(decision.next.context.failure).to.deep.equal(PROVIDER_REFUSAL);
      expect(decision.overruled).to.equal(null);
    });

    it('SUCCEED, then unavailable → confirming with a status command', () => {
      const story = started();
      const request = story.step('SUCCEED', 'operator', { reason: REASON });
      expect(request.next.stage).to.equal('submitting');
      expect(request.commands).to.deep.equal([]);
      expect(request.next.context.request).to.deep.include({ action: 'succeed', reason: REASON });
      const decision = story.answer('PROVIDER_UNAVAILABLE');
      expect(decision.next.stage).to.equal('confirming');
      expect(decision.commands).to.deep.equal([{ seq: 3, type: 'status', try: 1, delay_ms: 0 }]);
      expect(decision.settled).to.equal(2);
    });

    it('confirming + NOT_FOUND → submitting again with a new submit', () => {
      const story = started();
      story.step('SUCCEED', 'operator', { reason: REASON });
      story.answer('PROVIDER_UNAVAILABLE');
      const decision = story.answer('PROVIDER_NOT_FOUND');
      expect(decision.next.stage).to.equal('submitting');
      // The submit's retries count on across the detour (try 2 waits out the first back-off), and the
      // operator's request is answered: nothing to confirm yet, so the next unavailability retries again.
      expect(decision.commands).to.deep.equal([{ seq: 4, type: 'submit', try: 2, delay_ms: 10 }]);
      expect(decision.settled).to.equal(3);
      expect(decision.next.context.attempts).to.equal(2);
      expect(decision.next.context.request).to.equal(null);
    });

    it('confirming + PROVIDER_FAILED → failed, the operator’s SUCCEED overruled', () => {
      const story = started();
      story.step('SUCCEED', 'operator', { reason: REASON });
      story.answer('PROVIDER_UNAVAILABLE');
      const decision = story.answer('PROVIDER_FAILED');
      expect(decision.next.status).to.equal('failed');
      expect(decision.next.context.failure).to.deep.equal(PROVIDER_REFUSAL);
      expect(decision.overruled).to.deep.equal({ requested: 'succeed', outcome: 'failed' });
    });

    it('confirming + PROVIDER_SUCCEEDED → completed, as the operator asked (no overrule)', () => {
      const story = started();
      story.step('SUCCEED', 'operator', { reason: REASON });
      story.answer('PROVIDER_UNAVAILABLE');
      const decision = story.answer('PROVIDER_SUCCEEDED');
      expect(decision.next.status).to.equal('completed');
      expect(decision.overruled).to.equal(null);
    });

    it('confirming: a FAIL request then NOT_FOUND → voiding with the operator’s failure', () => {
      const story = started();
      story.step('SUCCEED', 'operator', { reason: REASON });
      story.answer('PROVIDER_UNAVAILABLE');
      story.step('FAIL', 'operator', { reason: 'changed my mind' });
      const decision = story.answer('PROVIDER_NOT_FOUND');
      expect(decision.next.stage).to.equal('voiding');
      expect(decision.commands).to.deep.equal([
        {
          seq: 4,
          type: 'void',
          try: 1,
          delay_ms: 0,
          failure: { code: 'operator_failed', message: 'changed my mind' },
        },
      ]);
    });

    it('refuses FAIL without a reason, from a client, before processing and while voiding', () => {
      const story = started();
      expect(story.refusal('FAIL', 'operator', { reason: null })).to.equal('reason_required');
      expect(story.refusal('FAIL', 'operator', { reason: '  ' })).to.equal('reason_required');
      expect(story.refusal('FAIL', 'client', { reason: REASON })).to.equal('forbidden');
      expect(story.refusal('SUCCEED', 'client', { reason: REASON })).to.equal('forbidden');
      expect(story.snapshot.context.request).to.equal(null);

      const queued = new Story(lifecycle);
      expect(queued.refusal('FAIL', 'operator', { reason: REASON })).to.equal('not_now');
      expect(queued.refusal('SUCCEED', 'operator', { reason: REASON })).to.equal('not_now');

      const voiding = started();
      voiding.step('FAIL', 'operator', { reason: REASON });
      voiding.answer('PROVIDER_UNAVAILABLE');
      expect(voiding.state).to.equal('processing.voiding');
      expect(voiding.refusal('FAIL', 'operator', { reason: REASON })).to.equal('not_now');
      expect(voiding.refusal('SUCCEED', 'operator', { reason: REASON })).to.equal('not_now');
    });
  });

  describe('needs_attention', () => {
    it('REDRIVE re-emits the outstanding command under its own number, at once, and counts it', () => {
      const story = started();
      story.answer('PROVIDER_UNAVAILABLE'); // submit try 2, delay 10, seq 3
      const outstanding = story.snapshot.context.command!;
      expect(outstanding.delay_ms).to.equal(10);
      const first = story.step('REDRIVE', 'system');
      expect(first.next.stage).to.equal('submitting');
      expect(first.commands).to.deep.equal([{ ...outstanding, delay_ms: 0 }]);
      expect(first.settled).to.equal(null);
      expect(first.next.context.redrives).to.equal(1);
      expect(first.next.context.commands).to.equal(3);
      const second = story.step('REDRIVE', 'system');
      expect(second.commands).to.deep.equal([{ ...outstanding, delay_ms: 0 }]);
      expect(second.next.context.redrives).to.equal(2);
    });

    it('after maxRedrives re-drives the next REDRIVE needs attention, emitting nothing', () => {
      const story = started();
      story.step('REDRIVE', 'system');
      story.step('REDRIVE', 'system');
      const decision = story.step('REDRIVE', 'system');
      expect(decision.next.status).to.equal('processing');
      expect(decision.next.stage).to.equal('needs_attention');
      expect(decision.commands).to.deep.equal([]);
      expect(decision.next.context.last_error?.code).to.equal('redrive_limit');
      // The submit stays outstanding: its late answer can still settle the payout.
      expect(decision.settled).to.equal(null);
      expect(story.seq).to.equal(2);
      // The sweeper leaves it alone from now on.
      expect(story.refusal('REDRIVE', 'system')).to.equal('not_now');
    });

    it('re-drives a queued payout’s processing message, then gives up the same way', () => {
      const story = new Story(lifecycle);
      const first = story.step('REDRIVE', 'system');
      expect(first.next.stage).to.equal('queued');
      expect(first.commands).to.deep.equal([{ seq: 1, type: 'process', try: 1, delay_ms: 0 }]);
      expect(first.next.context.redrives).to.equal(1);
      story.step('REDRIVE', 'system');
      const limit = story.step('REDRIVE', 'system');
      expect(limit.next.status).to.equal('created');
      expect(limit.next.stage).to.equal('needs_attention');
      expect(limit.commands).to.deep.equal([]);
      expect(limit.next.context.last_error?.code).to.equal('redrive_limit');
      expect(story.refusal('REDRIVE', 'system')).to.equal('not_now');
      expect(story.refusal('START', 'worker')).to.equal('not_now');
    });

    // `PayoutContext.redrives`: "Sweeper re-drives since the payout last moved on its own."
    it('the re-drive count starts again when the payout moves on its own (START)', () => {
      const story = new Story(lifecycle);
      story.step('REDRIVE', 'system');
      story.step('REDRIVE', 'system');
      const start = story.step('START', 'worker');
      expect(start.next.context.redrives).to.equal(0);
      // The submit's message is re-driven like any new command's, not sent straight to a person.
      const redrive = story.step('REDRIVE', 'system');
      expect(redrive.next.stage).to.equal('submitting');
      expect(redrive.commands).to.deep.equal([{ seq: 2, type: 'submit', try: 1, delay_ms: 0 }]);
    });

    it('the re-drive count starts again when the payout moves on its own (a provider result)', () => {
      const story = started();
      story.step('REDRIVE', 'system');
      story.step('REDRIVE', 'system');
      const retry = story.answer('PROVIDER_UNAVAILABLE');
      expect(retry.next.context.redrives).to.equal(0);
      expect(story.step('REDRIVE', 'system').commands).to.have.lengthOf(1);
    });

    it('RETRY resets the re-drive count: the limit counts from zero again', () => {
      const story = started();
      story.step('REDRIVE', 'system');
      story.step('REDRIVE', 'system');
      story.step('REDRIVE', 'system');
      expect(story.state).to.equal('processing.needs_attention');
      const retry = story.step('RETRY', 'operator', { reason: REASON });
      expect(retry.next.context.redrives).to.equal(0);
      // Two more re-drives are allowed again before the limit.
      expect(story.step('REDRIVE', 'system').commands).to.have.lengthOf(1);
      expect(story.step('REDRIVE', 'system').commands).to.have.lengthOf(1);
      expect(story.step('REDRIVE', 'system').next.stage).to.equal('needs_attention');
    });

    it('DEAD_LETTERED moves created.queued to created.needs_attention', () => {
      const story = new Story(lifecycle);
      const decision = story.step('DEAD_LETTERED', 'worker', { code: 'poison', message: 'bad message' });
      expect(decision.next.status).to.equal('created');
      expect(decision.next.stage).to.equal('needs_attention');
      expect(decision.commands).to.deep.equal([]);
      expect(decision.next.context.last_error).to.deep.equal({
        code: 'poison',
        message: 'bad message',
        at: '2026-12-01T10:00:00.000Z',
      });
    });

    it('DEAD_LETTERED moves processing.submitting to processing.needs_attention, the submit still outstanding', () => {
      const story = started();
      const decision = story.step('DEAD_LETTERED', 'worker', { code: 'poison', message: 'bad message' });
      expect(decision.next.status).to.equal('processing');
      expect(decision.next.stage).to.equal('needs_attention');
      expect(decision.commands).to.deep.equal([]);
      expect(decision.next.context.last_error?.code).to.equal('poison');
      expect(story.seq).to.equal(2);
    });

    it('DEAD_LETTERED is accepted from the system too, never from API callers', () => {
      expect(new Story(lifecycle).step('DEAD_LETTERED', 'system').next.stage).to.equal('needs_attention');
      expect(new Story(lifecycle).refusal('DEAD_LETTERED', 'client')).to.equal('forbidden');
      expect(new Story(lifecycle).refusal('DEAD_LETTERED', 'operator')).to.equal('forbidden');
    });

    it('operator RETRY from processing.needs_attention → submitting with a new submit, re-drives reset', () => {
      const story = started();
      story.step('REDRIVE', 'system');
      story.step('DEAD_LETTERED', 'worker');
      expect(story.snapshot.context.redrives).to.equal(1);
      const decision = story.step('RETRY', 'operator', { reason: REASON });
      expect(decision.next.stage).to.equal('submitting');
      expect(decision.commands).to.deep.equal([{ seq: 3, type: 'submit', try: 1, delay_ms: 0 }]);
      expect(decision.settled).to.equal(2);
      expect(decision.next.context.redrives).to.equal(0);
      expect(decision.next.context.attempts).to.equal(1);
    });

    it('operator RETRY from created.needs_attention → queued with a new process command', () => {
      const story = new Story(lifecycle);
      story.step('REDRIVE', 'system');
      story.step('DEAD_LETTERED', 'worker');
      const decision = story.step('RETRY', 'operator', { reason: REASON });
      expect(decision.next.status).to.equal('created');
      expect(decision.next.stage).to.equal('queued');
      expect(decision.commands).to.deep.equal([{ seq: 2, type: 'process', try: 1, delay_ms: 0 }]);
      expect(decision.next.context.redrives).to.equal(0);
      // And it can be started from there, the submit numbered after the new process message.
      const start = story.step('START', 'worker');
      expect(start.commands).to.deep.equal([{ seq: 3, type: 'submit', try: 1, delay_ms: 0 }]);
      expect(start.settled).to.equal(2);
    });

    it('RETRY needs a reason and an operator', () => {
      const story = needingAttention();
      expect(story.refusal('RETRY', 'operator', { reason: null })).to.equal('reason_required');
      expect(story.refusal('RETRY', 'client', { reason: REASON })).to.equal('forbidden');
      expect(story.refusal('RETRY', 'system', { reason: REASON })).to.equal('forbidden');
    });

    it('a late PROVIDER_SUCCEEDED for the outstanding command completes a payout needing attention', () => {
      const story = needingAttention();
      const decision = story.answer('PROVIDER_SUCCEEDED');
      expect(decision.next.status).to.equal('completed');
      expect(decision.settled).to.equal(2);
      expect(decision.overruled).to.equal(null);
    });

    it('a late PROVIDER_FAILED for the outstanding command fails a payout needing attention', () => {
      const story = needingAttention();
      const decision = story.answer('PROVIDER_FAILED');
      expect(decision.next.status).to.equal('failed');
      expect(decision.next.context.failure).to.deep.equal(PROVIDER_REFUSAL);
    });

    it('operator FAIL from needs_attention voids with the operator’s reason', () => {
      const story = needingAttention();
      const decision = story.step('FAIL', 'operator', { reason: REASON });
      expect(decision.next.stage).to.equal('voiding');
      expect(decision.commands).to.deep.equal([
        { seq: 3, type: 'void', try: 1, delay_ms: 0, failure: { code: 'operator_failed', message: REASON } },
      ]);
      expect(decision.settled).to.equal(2);
    });

    it('operator FAIL from needs_attention, then the void finds a payment → completed, overruled', () => {
      const story = needingAttention();
      story.step('FAIL', 'operator', { reason: REASON });
      const decision = story.answer('PROVIDER_SUCCEEDED');
      expect(decision.next.status).to.equal('completed');
      expect(decision.overruled).to.deep.equal({ requested: 'fail', outcome: 'completed' });
    });

    it('operator SUCCEED from needs_attention → confirming with a status command; a refusal overrules it', () => {
      const story = needingAttention();
      const decision = story.step('SUCCEED', 'operator', { reason: REASON });
      expect(decision.next.stage).to.equal('confirming');
      expect(decision.commands).to.deep.equal([{ seq: 3, type: 'status', try: 1, delay_ms: 0 }]);
      expect(decision.next.context.request).to.deep.include({ action: 'succeed', reason: REASON });
      const failed = story.answer('PROVIDER_FAILED');
      expect(failed.next.status).to.equal('failed');
      expect(failed.overruled).to.deep.equal({ requested: 'succeed', outcome: 'failed' });
    });
  });
});
