/** The consumer's retry policy: the table of transient errors and the attempt arithmetic. */
import { expect } from 'chai';
import { VersionMismatch } from '../../src/domain/errors.js';
import { PayoutKeptChanging, ProviderCallStalled } from '../../src/consumers/process-payout.js';
import { ProviderTransientError } from '../../src/adapters/simulated-provider.js';
import { MAX_INFRASTRUCTURE_WAITS, classifyError, decideRetry } from '../../src/consumers/retry-policy.js';

const withCode = (code: string, message = 'boom') => Object.assign(new Error(message), { code });

describe('consumers: retry policy', () => {
  it('classifies transient errors by the table, including causes', () => {
    const reason = (error: unknown) => {
      const verdict = classifyError(error);
      return verdict.transient ? verdict.rule.reason : `permanent:${verdict.reason}`;
    };
    // The provider's unavailability is the payout machine's to count (the processor reports it as an event): one
    // reaching the consumer would be a bug, dead-lettered like any other.
    expect(reason(new ProviderTransientError())).to.equal('permanent:processing_error');
    expect(reason(new ProviderCallStalled(10))).to.equal('provider_call_stalled');
    expect(reason(withCode('40001'))).to.equal('database_conflict');
    expect(reason(withCode('40P01'))).to.equal('database_conflict');
    expect(reason(new VersionMismatch(1, 2))).to.equal('version_conflict');
    expect(reason(new PayoutKeptChanging('x'))).to.equal('version_conflict');
    expect(reason(withCode('57P01'))).to.equal('database_unavailable');
    expect(reason(withCode('3D000'))).to.equal('database_unavailable');
    // A statement cancelled for running too long spends a try (the API answers it 503 like an outage).
    const timedOut = classifyError(withCode('57014'));
    expect(timedOut.transient && timedOut.rule).to.include({
      reason: 'statement_timeout',
      spendsAttempt: true,
    });
    expect(reason(withCode('ECONNREFUSED'))).to.equal('connection_error');
    expect(reason(new Error('Connection terminated unexpectedly'))).to.equal('database_connection_lost');
    expect(reason(new Error('outer', { cause: withCode('ECONNRESET') }))).to.equal('connection_error');
    expect(reason(withCode('23505'))).to.equal('permanent:processing_error');
    expect(reason(new TypeError('a bug'))).to.equal('permanent:processing_error');
    expect(reason('not even an error')).to.equal('permanent:processing_error');
  });

  it('spends one try per conflict and exhausts after the last tier', () => {
    const rule = (classifyError(new VersionMismatch(1, 2)) as { rule: Parameters<typeof decideRetry>[0] })
      .rule;
    const delays = [10, 20, 30];
    expect(decideRetry(rule, { attempt: 0, waits: 0 }, delays)).to.deep.equal({
      action: 'retry',
      attempt: 1,
      waits: 0,
      delayMs: 10,
    });
    expect(decideRetry(rule, { attempt: 2, waits: 5 }, delays)).to.deep.equal({
      action: 'retry',
      attempt: 3,
      waits: 5,
      delayMs: 30,
    });
    expect(decideRetry(rule, { attempt: 3, waits: 0 }, delays).action).to.equal('exhaust');
  });

  it('waits for our own infrastructure without spending retries, up to a bound', () => {
    const rule = (classifyError(withCode('ECONNREFUSED')) as { rule: Parameters<typeof decideRetry>[0] })
      .rule;
    const delays = [10, 20, 30];
    expect(decideRetry(rule, { attempt: 3, waits: 0 }, delays)).to.deep.equal({
      action: 'retry',
      attempt: 3,
      waits: 1,
      delayMs: 10,
    });
    expect(decideRetry(rule, { attempt: 1, waits: 7 }, delays)).to.deep.equal({
      action: 'retry',
      attempt: 1,
      waits: 8,
      delayMs: 30,
    });
    expect(decideRetry(rule, { attempt: 3, waits: MAX_INFRASTRUCTURE_WAITS }, delays).action).to.equal(
      'exhaust',
    );
  });
});
