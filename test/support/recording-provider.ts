/**
 * A provider for tests that records every call it is given, per payout, around a real provider (the simulated
 * one, with its ledger): which call, when it started and ended, what it answered. "Nothing is paid twice" is then
 * checked on the calls themselves — a second submit, a submit after a void, two calls of one payout in flight at
 * once — not only on the ledger, whose UNIQUE key could never show a second submit.
 *
 * Hooks let a test stop a call at a chosen point (before it reaches the provider, while the provider works on it,
 * after it answered) and do something there, e.g. an operator's request.
 */
import type { Payout } from '../../src/domain/payout.js';
import type { PaymentProvider, ProviderResult } from '../../src/domain/provider.js';

export type ProviderCallKind = 'submit' | 'void' | 'status';

export interface ProviderCall {
  payoutId: string;
  kind: ProviderCallKind;
  startedAt: number;
  endedAt?: number;
  /** `transient`: the provider asked to come back later; `error`: anything else thrown. */
  answer?: ProviderResult['status'] | 'not_found' | 'transient' | 'error';
}

export interface ProviderCallHooks {
  /** Awaited before the call reaches the provider. */
  before?(call: ProviderCall): Promise<void>;
  /** Run while the provider works on the call (both awaited). */
  during?(call: ProviderCall): Promise<void>;
  /** Awaited after the provider answered, before the answer is returned. */
  after?(call: ProviderCall): Promise<void>;
  /** Told of every finished call (e.g. to store it where another process can count it). */
  recorded?(call: ProviderCall): void | Promise<void>;
}

export class RecordingProvider implements PaymentProvider {
  readonly calls: ProviderCall[] = [];
  private readonly inFlight = new Map<string, number>();
  /** The most calls of one payout in flight at once, per payout. */
  readonly maxInFlight = new Map<string, number>();

  constructor(
    private readonly inner: PaymentProvider,
    public hooks: ProviderCallHooks = {},
  ) {}

  submit(payout: Payout, idempotencyKey: string): Promise<ProviderResult> {
    return this.record('submit', payout.id, () => this.inner.submit(payout, idempotencyKey));
  }

  status(idempotencyKey: string): Promise<ProviderResult | null> {
    return this.record('status', idempotencyKey, () => this.inner.status(idempotencyKey));
  }

  voidTransfer(
    idempotencyKey: string,
    payoutId: string,
    failure: { code: string; message: string },
  ): Promise<ProviderResult> {
    return this.record('void', payoutId, () => this.inner.voidTransfer(idempotencyKey, payoutId, failure));
  }

  callsOf(payoutId: string, kind?: ProviderCallKind): ProviderCall[] {
    return this.calls.filter(
      (call) => call.payoutId === payoutId && (kind === undefined || call.kind === kind),
    );
  }

  private async record<T extends ProviderResult | null>(
    kind: ProviderCallKind,
    payoutId: string,
    call: () => Promise<T>,
  ): Promise<T> {
    const entry: ProviderCall = { payoutId, kind, startedAt: Date.now() };
    this.calls.push(entry);
    await this.hooks.before?.(entry);
    const now = (this.inFlight.get(payoutId) ?? 0) + 1;
    this.inFlight.set(payoutId, now);
    this.maxInFlight.set(payoutId, Math.max(now, this.maxInFlight.get(payoutId) ?? 0));
    // The provider's work and whatever the test does meanwhile both finish before the answer goes back.
    const [settled] = await Promise.allSettled([call(), this.hooks.during?.(entry)]);
    this.inFlight.set(payoutId, (this.inFlight.get(payoutId) ?? 1) - 1);
    entry.endedAt = Date.now();
    if (settled.status === 'fulfilled') {
      entry.answer = settled.value === null ? 'not_found' : settled.value.status;
    } else {
      entry.answer = (settled.reason as Error)?.name === 'ProviderTransientError' ? 'transient' : 'error';
    }
    await this.hooks.after?.(entry);
    await this.hooks.recorded?.(entry);
    if (settled.status === 'rejected') throw settled.reason;
    return settled.value;
  }
}
