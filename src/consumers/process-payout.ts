/**
 * Processing one payout: START → provider submit → SUCCEED or FAIL, each a service call under the version check.
 * It is written to be run again at any point: a worker killed after any step leaves a payout that the
 * redelivered message moves on from where it stands, and the provider answers a repeated submit with its first
 * result, so nothing is paid twice.
 */
import { TransitionNotAllowed } from '../domain/errors.js';
import type { Payout } from '../domain/payout.js';
import type { PayoutService } from '../domain/payout-service.js';
import { workerPrincipal } from '../domain/principal.js';
import type { PayoutEvent, PayoutStatus } from '../machines/payout.machine.js';
import type { Metrics } from '../metrics.js';
import type { ProcessMessage } from '../persistence/outbox-scheduler.js';
import type { PaymentProvider, ProviderResult } from '../domain/provider.js';
import { ProviderTransientError } from '../domain/provider.js';

export interface ProcessOutcome {
  /** The status the payout had when the message arrived. */
  found: PayoutStatus;
  /** The status it has now (final, unless the worker is stopping). */
  status: PayoutStatus;
}

export const RETRIES_EXHAUSTED = {
  code: 'retries_exhausted',
  message: 'The payout could not be processed after every retry.',
} as const;

/**
 * Bounds the loop of `PayoutProcessor.drive`: at most START, one provider call with its SUCCEED/FAIL, and a
 * re-read after each lost race. Losing more often than this means something is badly wrong; the error is then
 * retried like a version conflict.
 */
const MAX_STEPS = 6;

/** The payout moved under the worker more often than `MAX_STEPS` allows; retried like a version conflict. */
export class PayoutKeptChanging extends Error {
  constructor(id: string) {
    super(`payout ${id} kept changing while the worker processed it`);
    this.name = 'PayoutKeptChanging';
  }
}

export class PayoutProcessor {
  constructor(
    private readonly service: PayoutService,
    private readonly provider: PaymentProvider,
    private readonly metrics?: Metrics,
    /** Longest wait for one provider call (`PROVIDER_TIMEOUT_MS`). */
    private readonly providerTimeoutMs = 10_000,
  ) {}

  async process(message: ProcessMessage): Promise<ProcessOutcome> {
    // The payout's own id is the idempotency key: every copy of its message, and every resumption after a
    // crash, asks the provider under the same key and gets the same first answer.
    return this.drive(message, (payout) => this.submit(payout));
  }

  /**
   * Gives up on a payout whose retries are spent. The provider key is voided first, so a submit still in flight
   * elsewhere cannot pay a payout we mark failed; if the provider had already answered, its answer wins.
   */
  async exhaust(message: ProcessMessage): Promise<ProcessOutcome> {
    return this.drive(message, (payout) =>
      this.provider.voidTransfer(payout.id, payout.id, RETRIES_EXHAUSTED),
    );
  }

  /**
   * Moves the payout of `message` from wherever it stands to a final status: START while created, then the
   * provider's answer from `onProcessing` as SUCCEED or FAIL.
   */
  private async drive(
    message: ProcessMessage,
    onProcessing: (payout: Payout) => Promise<ProviderResult>,
  ): Promise<ProcessOutcome> {
    const principal = workerPrincipal(message.client_id);
    let payout = await this.service.getPayout(principal, message.payout_id);
    const found = payout.status;
    for (let step = 0; step < MAX_STEPS; step += 1) {
      switch (payout.status) {
        case 'created':
          payout = await this.send(payout, { type: 'START' }, message);
          break;
        case 'processing':
          payout = await this.send(payout, eventFor(await onProcessing(payout)), message);
          break;
        default:
          return { found, status: payout.status };
      }
    }
    throw new PayoutKeptChanging(payout.id);
  }

  private async submit(payout: Payout): Promise<ProviderResult> {
    const started = process.hrtime.bigint();
    let outcome = 'transient_error';
    try {
      const result = await withTimeout(this.provider.submit(payout, payout.id), this.providerTimeoutMs);
      outcome = result.status;
      return result;
    } finally {
      this.metrics?.providerCalls.inc({ outcome });
      this.metrics?.providerDuration.observe({ outcome }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  /**
   * Sends one event through the service. Losing a race (another worker, an operator or the client moved the
   * payout first) is not an error here: re-read and continue from wherever the payout now stands.
   */
  private async send(payout: Payout, event: PayoutEvent, message: ProcessMessage): Promise<Payout> {
    const principal = workerPrincipal(message.client_id);
    try {
      return await this.service.applyEvent(principal, payout.id, event, {
        requestId: message.request_id,
        current: payout,
      });
    } catch (error) {
      if (!(error instanceof TransitionNotAllowed)) throw error;
      return this.service.getPayout(principal, payout.id);
    }
  }
}

function eventFor(result: ProviderResult): PayoutEvent {
  return result.status === 'succeeded'
    ? { type: 'SUCCEED' }
    : { type: 'FAIL', code: result.failure.code, message: result.failure.message };
}

/**
 * A provider that does not answer in time is a transient failure: the message is retried later under the same
 * idempotency key, so an answer that arrives late (an effect recorded after all) is what the retry gets back.
 */
function withTimeout<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ProviderTransientError(`The provider did not answer within ${timeoutMs} ms.`)),
      timeoutMs,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
