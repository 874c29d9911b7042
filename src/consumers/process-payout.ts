/**
 * Carrying out a payout's commands: the one place that talks to the provider. A message names one of the
 * payout's commands (or, written before commands existed, none); the machine holds the one that is outstanding.
 * The processor carries that command out — START for `process`, a provider call for `submit`, `void` and
 * `status` — and sends the result back into the machine as an event, which may issue the next command (carried
 * out at once when it has no back-off). It is written to be run again at any point: a worker killed after any
 * step leaves a payout whose outstanding command the redelivered message carries out, and the provider answers a
 * repeated call under the payout's key with its first result, so nothing is paid twice.
 */
import { TransitionNotAllowed } from '../domain/errors.js';
import type { Payout } from '../domain/payout.js';
import type { EventInput, PayoutService } from '../domain/payout-service.js';
import { workerPrincipal } from '../domain/principal.js';
import type { PaymentProvider, ProviderResult } from '../domain/provider.js';
import { ProviderTransientError } from '../domain/provider.js';
import type { PayoutCommand } from '../machines/payout.machine.js';
import { RETRIES_EXHAUSTED } from '../machines/payout.machine.js';
import type { PayoutStatus } from '../machines/payout-lifecycle.js';
import type { Metrics } from '../metrics.js';
import { zeroed } from '../metrics.js';
import type { ProcessMessage } from '../messaging/payout-message.js';
import { withTimeout } from '../timeout.js';

export interface ProcessOutcome {
  /** The status the payout had when the message arrived. */
  found: PayoutStatus;
  /** The status it has now. */
  status: PayoutStatus;
  /** Whether the message led to anything: false when the payout had already moved past its command. */
  acted: boolean;
}

/**
 * Bounds the loop of `PayoutProcessor.process`: START, a few provider commands with their answers, and a re-read
 * after each lost race. Losing more often than this means something is badly wrong; the error is then retried like
 * a version conflict.
 */
const MAX_STEPS = 8;

/** The payout moved under the worker more often than `MAX_STEPS` allows; retried like a version conflict. */
export class PayoutKeptChanging extends Error {
  constructor(id: string) {
    super(`payout ${id} kept changing while the worker processed it`);
    this.name = 'PayoutKeptChanging';
  }
}

/**
 * A provider call that outlived every bound the adapter promises (its own timeout answers
 * `ProviderTransientError`). Whether the provider or our own database stalled cannot be told apart here, so it
 * waits like an infrastructure outage and spends none of the payout's retries.
 */
export class ProviderCallStalled extends Error {
  constructor(ms: number) {
    super(`a provider call did not return within ${ms} ms`);
    this.name = 'ProviderCallStalled';
  }
}

/**
 * The `outcome` label of a provider call: the provider's answer, no record of the transfer, or a transient error.
 * Each is created at 0 when the worker starts, so the provider panel shows transient errors at 0 until there is one.
 */
const PROVIDER_CALL_OUTCOMES = ['succeeded', 'failed', 'not_found', 'transient_error'] as const;

export class PayoutProcessor {
  constructor(
    private readonly service: PayoutService,
    private readonly provider: PaymentProvider,
    private readonly metrics?: Metrics,
    /** The last-resort bound on one provider call; the adapter's own timeout is shorter. */
    private readonly stallMs = 60_000,
  ) {
    if (metrics)
      zeroed(
        metrics.providerCalls,
        PROVIDER_CALL_OUTCOMES.map((outcome) => ({ outcome })),
      );
  }

  async process(message: ProcessMessage): Promise<ProcessOutcome> {
    const principal = workerPrincipal(message.client_id);
    let payout = await this.service.getPayout(principal, message.payout_id);
    const found = payout.status;
    const done = new Set<number>();
    for (let step = 0; step < MAX_STEPS; step += 1) {
      const command = this.outstandingCommand(payout);
      if (!command || !isOurs(command, message, done))
        return { found, status: payout.status, acted: done.size > 0 };
      done.add(command.seq);
      const event =
        command.type === 'process' ? ({ type: 'START' } as const) : await this.callProvider(payout, command);
      payout = await this.send(payout, event, message);
    }
    throw new PayoutKeptChanging(payout.id);
  }

  /**
   * Tells the payout's machine that its message was dead-lettered: the payout then needs a person, and the
   * sweeper leaves it alone. Refused (and ignored) when the payout is already final.
   */
  async reportDeadLetter(message: ProcessMessage, code: string, detail: string): Promise<void> {
    const principal = workerPrincipal(message.client_id);
    const payout = await this.service.getPayout(principal, message.payout_id);
    await this.send(
      payout,
      { type: 'DEAD_LETTERED', code, message: detail || code, at: new Date().toISOString() },
      message,
    );
  }

  /** The payout's outstanding command, as its machine holds it (older snapshots upgraded first). */
  private outstandingCommand(payout: Payout): PayoutCommand | null {
    return this.service.lifecycle.commandOf(payout.snapshot, payout.machineVersion);
  }

  /** One provider call under the payout's own key, its answer as the machine event that reports it. */
  private async callProvider(payout: Payout, command: PayoutCommand): Promise<EventInput> {
    const started = process.hrtime.bigint();
    let outcome = 'error';
    try {
      const result = await withTimeout(
        this.ask(payout, command),
        this.stallMs,
        () => new ProviderCallStalled(this.stallMs),
      );
      outcome = result === null ? 'not_found' : result.status;
      if (result === null) return { type: 'PROVIDER_NOT_FOUND', seq: command.seq };
      if (result.status === 'succeeded') return { type: 'PROVIDER_SUCCEEDED', seq: command.seq };
      return { type: 'PROVIDER_FAILED', seq: command.seq, failure: result.failure };
    } catch (error) {
      if (!(error instanceof ProviderTransientError)) throw error;
      outcome = 'transient_error';
      return {
        type: 'PROVIDER_UNAVAILABLE',
        seq: command.seq,
        message: error.message,
        at: new Date().toISOString(),
      };
    } finally {
      this.metrics?.providerCalls.inc({ outcome });
      this.metrics?.providerDuration.observe({ outcome }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  private ask(payout: Payout, command: PayoutCommand): Promise<ProviderResult | null> {
    switch (command.type) {
      case 'submit':
        return this.provider.submit(payout, payout.id);
      case 'void':
        return this.provider.voidTransfer(payout.id, payout.id, command.failure ?? RETRIES_EXHAUSTED);
      case 'status':
        return this.provider.status(payout.id);
      case 'process':
        throw new Error('a process command is not a provider call');
    }
  }

  /**
   * Sends one event through the service. Losing a race (another worker answered the same command first, or the
   * payout moved on) is not an error here: re-read and continue from wherever the payout now stands.
   */
  private async send(payout: Payout, event: EventInput, message: ProcessMessage): Promise<Payout> {
    const principal = workerPrincipal(message.client_id);
    try {
      return await this.service.applyEvent(principal, payout.id, event, {
        requestId: message.request_id,
        current: payout,
        carriesOutCommands: true,
      });
    } catch (error) {
      if (!(error instanceof TransitionNotAllowed)) throw error;
      return this.service.getPayout(principal, payout.id);
    }
  }
}

/**
 * Whether the worker carries out `command` now: when the message names it, or when it needs no back-off (the
 * message stands for an earlier command: a redelivery after a crash, a version-1 message, or a command this loop
 * just issued). A command waiting out its back-off is left to its own message, which a delay queue holds. A
 * command this loop already carried out is never carried out twice by it.
 */
function isOurs(command: PayoutCommand, message: ProcessMessage, done: ReadonlySet<number>): boolean {
  if (done.has(command.seq)) return false;
  return command.seq === message.command?.seq || command.delay_ms === 0;
}
