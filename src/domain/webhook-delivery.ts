/**
 * Delivering one webhook event to one endpoint: load → decide → send → record. The body is rendered from the
 * delivery's row (the payout as it was at that version), so every attempt sends the same bytes under the same event
 * id; only the signature's time is the attempt's. What follows an attempt is data: delivered (2xx), retried after
 * the schedule's next wait, or failed once the schedule is spent — and an endpoint whose events keep failing is
 * disabled. The transport (the queue, the HTTP call) lives outside: the `webhooks` role and the sender port.
 */
import type { Payout } from './payout.js';
import type { PayoutResource } from './payout-resource.js';
import { toPayoutResource } from './payout-resource.js';
import { SIGNATURE_HEADER, signatureHeader } from './webhook-signature.js';
import type { WebhookDeliveryStatus, WebhookEventType } from './webhooks.js';

/** What a delivery needs: the row, its endpoint, the payout at that version, the secrets that sign now. */
export interface DeliveryWork {
  id: string;
  eventId: string;
  type: WebhookEventType;
  payoutVersion: number;
  createdAt: Date;
  status: WebhookDeliveryStatus;
  attempts: number;
  payout: Payout;
  endpoint: { id: string; url: string; status: 'enabled' | 'disabled'; deleted: boolean };
  secrets: string[];
}

/** What one attempt came to, as recorded on the delivery. */
export interface AttemptRecord {
  outcome: 'delivered' | 'retry' | 'failed';
  statusCode: number | null;
  error: string | null;
  /** When the next attempt is due (`retry` only). */
  nextAttemptAt: Date | null;
  /** For `failed`: disable the endpoint when this makes that many events in a row failed for good. */
  disableAfter: number;
}

export interface WebhookDeliveryStore {
  loadDelivery(id: string, now: Date): Promise<DeliveryWork | null>;
  /**
   * Records an attempt on a delivery still pending at the attempts `work` read; `recorded` false when it was not
   * (settled meanwhile, or another copy of its message recorded its attempt first).
   */
  recordAttempt(
    work: DeliveryWork,
    record: AttemptRecord,
  ): Promise<{ recorded: boolean; endpointDisabled: boolean }>;
}

export interface WebhookRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** A receiver's answer (its status code and at most 1 KiB of its body), or why there was none. */
export type WebhookResponse =
  | { kind: 'answered'; statusCode: number; body: string }
  | { kind: 'refused'; error: string }
  | { kind: 'unreachable'; error: string };

/** The port to the outside world: one POST, bounded in time, never following a redirect. */
export interface WebhookSender {
  send(request: WebhookRequest): Promise<WebhookResponse>;
}

export type DispatchOutcome =
  | { kind: 'delivered'; statusCode: number }
  | { kind: 'retry'; delayMs: number; attempt: number; detail: string }
  | { kind: 'failed'; endpointDisabled: boolean; detail: string }
  | { kind: 'skipped'; reason: 'settled' | 'unknown' | 'endpoint_gone' };

/** The body of a webhook event, byte for byte the same on every attempt. */
export interface WebhookEventBody {
  id: string;
  type: WebhookEventType;
  created_at: string;
  data: { object: PayoutResource };
  payout_version: number;
}

export const WEBHOOK_USER_AGENT = 'Payouts-Webhooks/1.0 (+https://github.com/payouts)';

export function webhookEventBody(
  work: Pick<DeliveryWork, 'eventId' | 'type' | 'createdAt' | 'payout' | 'payoutVersion'>,
): string {
  // The receiver is the payout's client: `available_actions` are what a client key may do.
  const principal = { clientId: work.payout.clientId, role: 'client' as const, actor: 'webhook' };
  const body: WebhookEventBody = {
    id: work.eventId,
    type: work.type,
    created_at: work.createdAt.toISOString(),
    data: { object: toPayoutResource(work.payout, principal) },
    payout_version: work.payoutVersion,
  };
  return JSON.stringify(body);
}

/** The wait before the retry that follows attempt `attempt` (1-based), or null when the schedule is spent. */
export function retryDelayAfter(scheduleMs: readonly number[], attempt: number): number | null {
  return attempt >= 1 && attempt <= scheduleMs.length ? scheduleMs[attempt - 1]! : null;
}

export interface WebhookDispatcherDeps {
  store: WebhookDeliveryStore;
  sender: WebhookSender;
  retryScheduleMs: readonly number[];
  disableAfter: number;
  now?: () => Date;
}

export class WebhookDispatcher {
  constructor(private readonly deps: WebhookDispatcherDeps) {}

  async deliver(deliveryId: string): Promise<DispatchOutcome> {
    const now = this.now();
    const work = await this.deps.store.loadDelivery(deliveryId, now);
    if (!work) return { kind: 'skipped', reason: 'unknown' };
    if (work.status !== 'pending') return { kind: 'skipped', reason: 'settled' };
    if (work.endpoint.deleted || work.endpoint.status !== 'enabled') {
      await this.deps.store.recordAttempt(work, {
        outcome: 'failed',
        statusCode: null,
        error: work.endpoint.deleted ? 'endpoint deleted' : 'endpoint disabled',
        nextAttemptAt: null,
        // Not the receiver's failure: it does not count toward disabling anything.
        disableAfter: 0,
      });
      return { kind: 'skipped', reason: 'endpoint_gone' };
    }
    const body = webhookEventBody(work);
    const timestamp = Math.floor(now.getTime() / 1000);
    const response = await this.deps.sender.send({
      url: work.endpoint.url,
      body,
      headers: {
        'Content-Type': 'application/json',
        'User-Agent': WEBHOOK_USER_AGENT,
        'Payouts-Event-Id': work.eventId,
        [SIGNATURE_HEADER]: signatureHeader(work.secrets, timestamp, body),
      },
    });
    const attempt = work.attempts + 1;
    const statusCode = response.kind === 'answered' ? response.statusCode : null;
    if (statusCode !== null && statusCode >= 200 && statusCode < 300) {
      await this.deps.store.recordAttempt(work, {
        outcome: 'delivered',
        statusCode,
        error: null,
        nextAttemptAt: null,
        disableAfter: this.deps.disableAfter,
      });
      return { kind: 'delivered', statusCode };
    }
    const detail = describe(response);
    const delayMs = retryDelayAfter(this.deps.retryScheduleMs, attempt);
    if (delayMs !== null) {
      const { recorded } = await this.deps.store.recordAttempt(work, {
        outcome: 'retry',
        statusCode,
        error: detail,
        nextAttemptAt: new Date(now.getTime() + delayMs),
        disableAfter: this.deps.disableAfter,
      });
      // Another copy of the message recorded this attempt and scheduled the retry: this copy ends here, so that
      // duplicates never multiply.
      if (!recorded) return { kind: 'skipped', reason: 'settled' };
      return { kind: 'retry', delayMs, attempt, detail };
    }
    const { endpointDisabled } = await this.deps.store.recordAttempt(work, {
      outcome: 'failed',
      statusCode,
      error: detail,
      nextAttemptAt: null,
      disableAfter: this.deps.disableAfter,
    });
    return { kind: 'failed', endpointDisabled, detail };
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }
}

/** An attempt's failure in words, for the delivery log: the status (and the start of the body), or the error. */
function describe(response: WebhookResponse): string {
  if (response.kind !== 'answered') return response.error;
  const excerpt = [...response.body]
    .map((char) => (char < ' ' || char === '\u007f' ? ' ' : char))
    .join('')
    .replace(/ +/g, ' ')
    .trim()
    .slice(0, 200);
  return excerpt === '' ? `HTTP ${response.statusCode}` : `HTTP ${response.statusCode}: ${excerpt}`;
}
