/**
 * The simulated provider behind the provider port (src/domain/provider.ts): its own ledger, one effect per
 * idempotency key, a repeated submit answered with the first result.
 */
import type { Knex } from 'knex';
import type { Config } from '../config.js';
import { MINOR_DIGITS } from '../domain/currency.js';
import { decimalToMinor } from '../domain/money.js';
import { Batcher } from '../persistence/batcher.js';
import type { Payout } from '../domain/payout.js';
import type { PaymentProvider, ProviderResult } from '../domain/provider.js';
import { ProviderTransientError } from '../domain/provider.js';

export type { PaymentProvider, ProviderResult } from '../domain/provider.js';
export { ProviderTransientError } from '../domain/provider.js';
/** Re-exported for the callers that know it from here; it lives in src/domain/money.ts. */
export { decimalToMinor } from '../domain/money.js';

export interface SimulatedProviderOptions {
  db: Knex;
  /** Delay of every submit, in milliseconds (`PROVIDER_DELAY_MS`). */
  delayMs: number;
  /**
   * How long a call waits for the provider's answer (`PROVIDER_TIMEOUT_MS`): a delay beyond it is a timeout, a
   * transient failure with nothing recorded. It bounds the provider's own answer, not the ledger write after it,
   * which is our database's (a stall there is an outage of ours, and spends no retry of the payout).
   */
  timeoutMs?: number;
  /** Share of submits that fail transiently, 0..1 (`PROVIDER_FAULT_RATE`). */
  faultRate: number;
  /** Seed of the fault generator (`PROVIDER_SEED`), so a run's faults can be replayed. */
  seed: number;
  /** Normalised IBANs that the provider refuses (`recipient_blocked`). */
  blockedIbans: readonly string[];
  /** Per-currency limit, a decimal string in major units; amounts strictly above are refused (`provider_limit_exceeded`). */
  limits: Readonly<Record<string, string>>;
}

export function simulatedProviderOptions(config: Config, db: Knex): SimulatedProviderOptions {
  return {
    db,
    delayMs: config.providerDelayMs,
    timeoutMs: config.providerTimeoutMs,
    faultRate: config.providerFaultRate,
    seed: config.providerSeed,
    blockedIbans: config.providerBlockedIbans,
    limits: config.providerLimits,
  };
}

interface Transfer {
  idempotencyKey: string;
  payoutId: string;
  decision: ProviderResult;
}

interface TransferRow {
  result: 'succeeded' | 'failed';
  failure_code: string | null;
  failure_message: string | null;
}

/**
 * A provider with its own ledger, `provider_transfers` (one row per idempotency key, ever). Its rules are
 * deterministic (a blocklist, a per-currency limit compared exactly in minor units); its transient faults come
 * from a seeded generator and are thrown before anything is recorded, like a request that never reached it.
 */
export class SimulatedProvider implements PaymentProvider {
  private readonly random: () => number;
  private readonly limitsMinor: ReadonlyMap<string, bigint>;
  private readonly blocked: ReadonlySet<string>;
  private readonly records = new Batcher((transfers: Transfer[]) => this.insertTransfers(transfers), {
    keyOf: (transfer) => transfer.idempotencyKey,
  });

  constructor(private readonly options: SimulatedProviderOptions) {
    this.random = mulberry32(options.seed);
    this.blocked = new Set(options.blockedIbans);
    const limits = new Map<string, bigint>();
    for (const [currency, decimal] of Object.entries(options.limits)) {
      const digits = MINOR_DIGITS[currency];
      if (digits === undefined) throw new Error(`provider limit for unknown currency ${currency}`);
      limits.set(currency, decimalToMinor(decimal, digits));
    }
    this.limitsMinor = limits;
  }

  async submit(payout: Payout, idempotencyKey: string): Promise<ProviderResult> {
    const { delayMs, timeoutMs } = this.options;
    if (timeoutMs !== undefined && delayMs > timeoutMs) {
      await new Promise((resolve) => setTimeout(resolve, timeoutMs));
      throw new ProviderTransientError(`The provider did not answer within ${timeoutMs} ms.`);
    }
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    if (this.options.faultRate > 0 && this.random() < this.options.faultRate) {
      throw new ProviderTransientError('Simulated provider fault: try again later.');
    }
    const decision = this.decide(payout);
    return this.recordOnce(idempotencyKey, payout.id, decision);
  }

  /**
   * Insert-or-nothing: under concurrent calls with one key exactly one INSERT wins (the other waits for its commit
   * and does nothing). The winner learns its own result from RETURNING; a loser reads the first row. Concurrent
   * calls with different keys share one INSERT (`Batcher`); one key appears at most once per statement.
   */
  private async recordOnce(
    idempotencyKey: string,
    payoutId: string,
    decision: ProviderResult,
  ): Promise<ProviderResult> {
    const recorded = await this.records.run({ idempotencyKey, payoutId, decision });
    if (recorded) return recorded;
    const first = await this.status(idempotencyKey);
    if (!first) throw new Error(`provider transfer ${idempotencyKey} vanished after insert`);
    return first;
  }

  /** One INSERT for many keys; per key, its result when this statement recorded it, null when one was there. */
  private async insertTransfers(transfers: readonly Transfer[]): Promise<Array<ProviderResult | null>> {
    const input = transfers.map(({ idempotencyKey, payoutId, decision }) => ({
      idempotency_key: idempotencyKey,
      payout_id: payoutId,
      result: decision.status,
      failure_code: decision.status === 'failed' ? decision.failure.code : null,
      failure_message: decision.status === 'failed' ? decision.failure.message : null,
    }));
    const inserted = await this.options.db.raw<{ rows: Array<TransferRow & { idempotency_key: string }> }>(
      `INSERT INTO provider_transfers (idempotency_key, payout_id, result, failure_code, failure_message)
       SELECT idempotency_key, payout_id, result, failure_code, failure_message
         FROM json_to_recordset(?::json) AS t(idempotency_key text, payout_id uuid, result text,
                                             failure_code text, failure_message text)
       ON CONFLICT (idempotency_key) DO NOTHING
       RETURNING idempotency_key, result, failure_code, failure_message`,
      [JSON.stringify(input)],
    );
    const byKey = new Map(inserted.rows.map((row) => [row.idempotency_key, toResult(row)]));
    return transfers.map((transfer) => byKey.get(transfer.idempotencyKey) ?? null);
  }

  async status(idempotencyKey: string): Promise<ProviderResult | null> {
    const row = (await this.options
      .db('provider_transfers')
      .select('result', 'failure_code', 'failure_message')
      .where({ idempotency_key: idempotencyKey })
      .first()) as TransferRow | undefined;
    return row ? toResult(row) : null;
  }

  async voidTransfer(
    idempotencyKey: string,
    payoutId: string,
    failure: { code: string; message: string },
  ): Promise<ProviderResult> {
    return this.recordOnce(idempotencyKey, payoutId, { status: 'failed', failure });
  }

  private decide(payout: Payout): ProviderResult {
    if (this.blocked.has(payout.recipient.iban)) {
      return {
        status: 'failed',
        failure: { code: 'recipient_blocked', message: 'The provider refuses this recipient.' },
      };
    }
    const limit = this.limitsMinor.get(payout.amount.currency);
    if (limit !== undefined && payout.amount.minor > limit) {
      return {
        status: 'failed',
        failure: {
          code: 'provider_limit_exceeded',
          message: `The amount exceeds the provider's limit of ${this.options.limits[payout.amount.currency]} ${payout.amount.currency}.`,
        },
      };
    }
    return { status: 'succeeded' };
  }
}

function toResult(row: TransferRow): ProviderResult {
  if (row.result === 'succeeded') return { status: 'succeeded' };
  return {
    status: 'failed',
    failure: { code: row.failure_code ?? 'provider_failed', message: row.failure_message ?? '' },
  };
}

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence of faults. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
