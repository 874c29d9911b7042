/**
 * The provider port — where money actually leaves. Every call carries an idempotency key (the payout's own id),
 * and the provider performs at most one effect per key: a repeated submit answers with the first result. That is
 * what makes a crash between "the provider paid" and "we saved SUCCEED" harmless. The provider's answer is the
 * truth about money; a payout's status follows it, never the other way round.
 */
import type { Payout } from './payout.js';

export type ProviderResult =
  { status: 'succeeded' } | { status: 'failed'; failure: { code: string; message: string } };

export interface PaymentProvider {
  /** Pays the payout once per key; a repeated call returns the first result. Throws `ProviderTransientError` to say "try later". */
  submit(payout: Payout, idempotencyKey: string): Promise<ProviderResult>;
  /** The first result under this key, or null when nothing was submitted. */
  status(idempotencyKey: string): Promise<ProviderResult | null>;
  /**
   * Closes the key for good: when nothing was paid under it, nothing ever will be (a later submit answers with
   * the failure given here). Returns the key's first result, which may be an earlier success. This is how a payout
   * is given up (retries exhausted, or an operator's FAIL) without racing a submit still in flight for it:
   * reading `status` and then failing would let that submit pay a payout we are about to mark failed.
   */
  voidTransfer(
    idempotencyKey: string,
    payoutId: string,
    failure: { code: string; message: string },
  ): Promise<ProviderResult>;
}

/** The provider could not be reached or asked us to come back: retry later. No effect was recorded. */
export class ProviderTransientError extends Error {
  constructor(message = 'The provider is temporarily unavailable.') {
    super(message);
    this.name = 'ProviderTransientError';
  }
}
