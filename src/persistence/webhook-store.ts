/**
 * Webhook endpoints and deliveries on PostgreSQL: the domain's `WebhookStore`. Secrets are sealed with
 * `SecretBox` before they reach a row and opened only for signing; no read for the API returns them.
 */
import type { Knex } from 'knex';
import type {
  WebhookDelivery,
  WebhookDeliveryFilter,
  WebhookDeliveryPage,
  WebhookEndpoint,
  WebhookEndpointChanges,
  WebhookEndpointPage,
  WebhookEventType,
  WebhookStore,
} from '../domain/webhooks.js';
import type { AttemptRecord, DeliveryWork, WebhookDeliveryStore } from '../domain/webhook-delivery.js';
import type { PayoutRow } from './models.js';
import { translated } from './payout-store.js';
import { WEBHOOK_DELIVERY_TOPIC, toPayout } from './payout-repository.js';
import type { SecretBox } from './secret-box.js';

export interface WebhookEndpointRow {
  id: string;
  seq: string;
  client_id: string;
  url: string;
  events: string[];
  description: string | null;
  status: 'enabled' | 'disabled';
  disabled_reason: string | null;
  secret_ciphertext: Buffer;
  previous_secret_ciphertext: Buffer | null;
  previous_secret_expires_at: Date | null;
  consecutive_failures: number;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

/** The columns an API read needs: never the sealed secrets. */
const ENDPOINT_COLUMNS: string[] = [
  'id',
  'seq',
  'client_id',
  'url',
  'events',
  'description',
  'status',
  'disabled_reason',
  'created_at',
  'updated_at',
];

type EndpointRead = Omit<
  WebhookEndpointRow,
  | 'secret_ciphertext'
  | 'previous_secret_ciphertext'
  | 'previous_secret_expires_at'
  | 'consecutive_failures'
  | 'deleted_at'
>;

export function toEndpoint(row: EndpointRead): WebhookEndpoint {
  return {
    id: row.id,
    clientId: row.client_id,
    url: row.url,
    events: row.events as WebhookEventType[],
    description: row.description,
    status: row.status,
    disabledReason: row.disabled_reason,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export class PgWebhookStore implements WebhookStore, WebhookDeliveryStore {
  constructor(
    private readonly db: Knex,
    private readonly box: SecretBox,
  ) {}

  createEndpoint(endpoint: WebhookEndpoint, secret: string): Promise<void> {
    return translated(async () => {
      await this.db('webhook_endpoints').insert({
        id: endpoint.id,
        client_id: endpoint.clientId,
        url: endpoint.url,
        events: endpoint.events,
        description: endpoint.description,
        status: endpoint.status,
        secret_ciphertext: this.box.seal(secret, endpoint.id),
        created_at: endpoint.createdAt,
        updated_at: endpoint.updatedAt,
      });
    });
  }

  listEndpoints(clientId: string, page: { limit: number; after?: string }): Promise<WebhookEndpointPage> {
    return translated(async () => {
      const query = this.db<WebhookEndpointRow>('webhook_endpoints')
        .select(ENDPOINT_COLUMNS)
        .where('client_id', clientId)
        .whereNull('deleted_at')
        .orderBy('seq', 'desc')
        .limit(page.limit + 1);
      if (page.after !== undefined) void query.where('seq', '<', page.after);
      const rows = (await query) as unknown as EndpointRead[];
      const shown = rows.slice(0, page.limit);
      return {
        endpoints: shown.map(toEndpoint),
        last: shown.length > 0 ? String(shown[shown.length - 1]!.seq) : null,
        hasMore: rows.length > page.limit,
      };
    });
  }

  findEndpoint(clientId: string, id: string): Promise<WebhookEndpoint | null> {
    return translated(async () => {
      const row = (await this.db<WebhookEndpointRow>('webhook_endpoints')
        .select(ENDPOINT_COLUMNS)
        .where({ id, client_id: clientId })
        .whereNull('deleted_at')
        .first()) as EndpointRead | undefined;
      return row ? toEndpoint(row) : null;
    });
  }

  updateEndpoint(
    clientId: string,
    id: string,
    changes: WebhookEndpointChanges,
  ): Promise<WebhookEndpoint | null> {
    return translated(async () => {
      const set: Record<string, unknown> = { updated_at: this.db.fn.now() };
      if (changes.url !== undefined) set.url = changes.url;
      if (changes.events !== undefined) set.events = changes.events;
      if (changes.description !== undefined) set.description = changes.description;
      if (changes.status !== undefined) {
        set.status = changes.status;
        // A client's own enable or disable clears what the service said and starts the failure count again.
        set.disabled_reason = null;
        set.consecutive_failures = 0;
      }
      const rows: EndpointRead[] = await this.db('webhook_endpoints')
        .update(set)
        .where({ id, client_id: clientId })
        .whereNull('deleted_at')
        .returning(ENDPOINT_COLUMNS);
      return rows[0] ? toEndpoint(rows[0]) : null;
    });
  }

  deleteEndpoint(clientId: string, id: string): Promise<boolean> {
    return translated(async () => {
      const count = await this.db('webhook_endpoints')
        .update({ status: 'disabled', deleted_at: this.db.fn.now(), updated_at: this.db.fn.now() })
        .where({ id, client_id: clientId })
        .whereNull('deleted_at');
      return count > 0;
    });
  }

  rotateSecret(
    clientId: string,
    id: string,
    secret: string,
    previousExpiresAt: Date,
  ): Promise<WebhookEndpoint | null> {
    return translated(async () => {
      // The current secret becomes the previous one in the same UPDATE: a rotation racing another leaves one
      // of them current and the other previous, never a secret lost without its overlap.
      const rows: EndpointRead[] = await this.db('webhook_endpoints')
        .update({
          previous_secret_ciphertext: this.db.ref('secret_ciphertext'),
          previous_secret_expires_at: previousExpiresAt,
          secret_ciphertext: this.box.seal(secret, id),
          updated_at: this.db.fn.now(),
        } as Record<string, unknown>)
        .where({ id, client_id: clientId })
        .whereNull('deleted_at')
        .returning(ENDPOINT_COLUMNS);
      return rows[0] ? toEndpoint(rows[0]) : null;
    });
  }

  /** The secrets that sign a delivery to the endpoint now: the current one, and the previous during its overlap. */
  async signingSecrets(endpointId: string, now = new Date()): Promise<string[]> {
    const row = await this.db<WebhookEndpointRow>('webhook_endpoints')
      .select('secret_ciphertext', 'previous_secret_ciphertext', 'previous_secret_expires_at')
      .where({ id: endpointId })
      .first();
    if (!row) return [];
    const secrets = [this.box.open(row.secret_ciphertext, endpointId)];
    if (
      row.previous_secret_ciphertext &&
      row.previous_secret_expires_at &&
      row.previous_secret_expires_at > now
    ) {
      secrets.push(this.box.open(row.previous_secret_ciphertext, endpointId));
    }
    return secrets;
  }

  listDeliveries(
    clientId: string,
    endpointId: string,
    filter: WebhookDeliveryFilter,
  ): Promise<WebhookDeliveryPage> {
    return translated(async () => {
      const query = this.db('webhook_deliveries')
        .select(DELIVERY_COLUMNS)
        .where({ client_id: clientId, endpoint_id: endpointId })
        .orderBy('seq', 'desc')
        .limit(filter.limit + 1);
      if (filter.after !== undefined) void query.where('seq', '<', filter.after);
      if (filter.payoutId !== undefined) void query.where('payout_id', filter.payoutId);
      const rows = (await query) as unknown as DeliveryRow[];
      const shown = rows.slice(0, filter.limit);
      return {
        deliveries: shown.map(toDelivery),
        last: shown.length > 0 ? String(shown[shown.length - 1]!.seq) : null,
        hasMore: rows.length > filter.limit,
      };
    });
  }

  /**
   * One statement: the delivery back to pending with its attempts counted anew, and its outbox row, only when its
   * endpoint is enabled; otherwise nothing is written and the endpoint's state answers why.
   */
  redeliver(
    clientId: string,
    deliveryId: string,
  ): Promise<WebhookDelivery | { disabledEndpoint: string } | null> {
    return translated(async () => {
      const result = await this.db.raw<{
        rows: Array<DeliveryRow & { endpoint_status: string; queued: boolean }>;
      }>(
        `WITH t AS (
           SELECT d.id, e.id AS endpoint_id, e.status AS endpoint_status
             FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
            WHERE d.id = ? AND d.client_id = ? AND e.deleted_at IS NULL),
         u AS (
           UPDATE webhook_deliveries d SET status = 'pending', attempts = 0, next_attempt_at = now(),
                  delivered_at = NULL
             FROM t WHERE d.id = t.id AND t.endpoint_status = 'enabled'
           RETURNING d.*),
         o AS (
           INSERT INTO outbox (id, topic, payload)
           SELECT gen_random_uuid(), '${WEBHOOK_DELIVERY_TOPIC}', jsonb_build_object('delivery_id', u.id) FROM u)
         SELECT u.*, t.endpoint_status, t.endpoint_id AS disabled_endpoint FROM t LEFT JOIN u ON u.id = t.id`,
        [deliveryId, clientId],
      );
      const row = result.rows[0] as
        (DeliveryRow & { endpoint_status: string; disabled_endpoint: string }) | undefined;
      if (!row) return null;
      if (row.endpoint_status !== 'enabled') return { disabledEndpoint: row.disabled_endpoint };
      return toDelivery(row);
    });
  }

  loadDelivery(id: string, now: Date): Promise<DeliveryWork | null> {
    return translated(async () => {
      const row = (await this.db('webhook_deliveries as d')
        .join('webhook_endpoints as e', 'e.id', 'd.endpoint_id')
        .select(
          'd.id',
          'd.event_id',
          'd.type',
          'd.payout_version',
          'd.payout',
          'd.created_at',
          'd.status',
          'd.attempts',
          'e.id as endpoint_id',
          'e.url',
          'e.status as endpoint_status',
          'e.deleted_at',
          'e.secret_ciphertext',
          'e.previous_secret_ciphertext',
          'e.previous_secret_expires_at',
        )
        .where('d.id', id)
        .first()) as DeliveryJoinRow | undefined;
      if (!row) return null;
      const secrets = [this.box.open(row.secret_ciphertext, row.endpoint_id)];
      if (
        row.previous_secret_ciphertext &&
        row.previous_secret_expires_at &&
        row.previous_secret_expires_at > now
      ) {
        secrets.push(this.box.open(row.previous_secret_ciphertext, row.endpoint_id));
      }
      return {
        id: row.id,
        eventId: row.event_id,
        type: row.type as WebhookEventType,
        payoutVersion: row.payout_version,
        createdAt: row.created_at,
        status: row.status,
        attempts: row.attempts,
        payout: toPayout(payoutRowOf(row.payout)),
        endpoint: {
          id: row.endpoint_id,
          url: row.url,
          status: row.endpoint_status,
          deleted: row.deleted_at !== null,
        },
        secrets,
      };
    });
  }

  /**
   * One statement: the attempt on the delivery, only while it is pending with the attempts `work` read (a copy of
   * the message that lost the race to another copy, or one overtaken by a redelivery, records nothing) and its endpoint's run of failed events — reset by a delivery, grown by a failure, and the
   * endpoint disabled when the run reaches `disableAfter`.
   */
  recordAttempt(
    work: DeliveryWork,
    record: AttemptRecord,
  ): Promise<{ recorded: boolean; endpointDisabled: boolean }> {
    return translated(async () => {
      const status = record.outcome === 'retry' ? 'pending' : record.outcome;
      const result = await this.db.raw<{ rows: Array<{ recorded: boolean; disabled: boolean }> }>(
        `WITH d AS (
           UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = now(), last_status_code = ?,
                  last_error = ?, status = ?, next_attempt_at = ?::timestamptz,
                  delivered_at = CASE WHEN ? = 'delivered' THEN now() END
            WHERE id = ? AND status = 'pending' AND attempts = ?
           RETURNING endpoint_id),
         e AS (
           UPDATE webhook_endpoints e SET
             consecutive_failures = CASE WHEN ? = 'delivered' THEN 0 ELSE e.consecutive_failures + 1 END,
             status = CASE WHEN ? = 'failed' AND ?::integer > 0 AND e.consecutive_failures + 1 >= ?::integer
                           THEN 'disabled' ELSE e.status END,
             disabled_reason = CASE WHEN ? = 'failed' AND ?::integer > 0 AND e.consecutive_failures + 1 >= ?::integer
                                    AND e.status = 'enabled' THEN 'consecutive_failures' ELSE e.disabled_reason END
            FROM d
            WHERE e.id = d.endpoint_id AND ? IN ('delivered', 'failed') AND ?::integer > 0
              AND e.deleted_at IS NULL
           RETURNING e.status = 'disabled' AND e.disabled_reason = 'consecutive_failures'
                     AND ? = 'failed' AND e.consecutive_failures = ?::integer AS disabled)
         SELECT EXISTS (SELECT FROM d) AS recorded, coalesce((SELECT bool_or(disabled) FROM e), false) AS disabled`,
        [
          record.statusCode,
          record.error?.slice(0, 1000) ?? null,
          status,
          record.nextAttemptAt,
          record.outcome,
          work.id,
          work.attempts,
          record.outcome,
          record.outcome,
          record.disableAfter,
          record.disableAfter,
          record.outcome,
          record.disableAfter,
          record.disableAfter,
          record.outcome,
          record.disableAfter,
          record.outcome,
          record.disableAfter,
        ],
      );
      const row = result.rows[0]!;
      return { recorded: row.recorded, endpointDisabled: row.disabled };
    });
  }

  /**
   * Queues again the pending deliveries whose attempt is `overdueSeconds` late with no message waiting in the
   * outbox (their message was lost or dropped), at most `limit`, each with its outbox row in the same statement;
   * their next attempt moves to now, so two dispatchers never queue one twice. Returns how many.
   */
  redriveLostDeliveries(overdueSeconds: number, limit: number): Promise<number> {
    return translated(async () => {
      const result = await this.db.raw<{ rows: Array<{ count: string }> }>(
        `WITH lost AS (
           SELECT d.id FROM webhook_deliveries d
            WHERE d.status = 'pending'
              AND coalesce(d.next_attempt_at, d.created_at) < now() - make_interval(secs => ?)
              AND NOT EXISTS (
                SELECT FROM outbox o WHERE o.published_at IS NULL AND o.topic = '${WEBHOOK_DELIVERY_TOPIC}'
                   AND o.payload->>'delivery_id' = d.id::text)
            ORDER BY d.created_at
            LIMIT ?
            FOR UPDATE OF d SKIP LOCKED),
         u AS (
           UPDATE webhook_deliveries d SET next_attempt_at = now() FROM lost WHERE d.id = lost.id RETURNING d.id),
         o AS (
           INSERT INTO outbox (id, topic, payload)
           SELECT gen_random_uuid(), '${WEBHOOK_DELIVERY_TOPIC}', jsonb_build_object('delivery_id', u.id) FROM u)
         SELECT count(*) AS count FROM u`,
        [overdueSeconds, limit],
      );
      return Number(result.rows[0]!.count);
    });
  }

  /** Deletes up to `limit` delivered or failed deliveries older than `days`; returns how many. */
  pruneDeliveries(days: number, limit: number): Promise<number> {
    return translated(async () => {
      const result = await this.db.raw<{ rowCount: number }>(
        `DELETE FROM webhook_deliveries WHERE id IN (
           SELECT id FROM webhook_deliveries
            WHERE status <> 'pending' AND created_at < now() - make_interval(days => ?)
            LIMIT ?)`,
        [days, limit],
      );
      return result.rowCount;
    });
  }

  /** Pending deliveries and the age of the oldest: the dispatcher's backlog gauges. */
  deliveryBacklog(): Promise<{ count: number; oldestAgeSeconds: number }> {
    return translated(async () => {
      const result = await this.db.raw<{ rows: Array<{ count: string; age: number | null }> }>(
        `SELECT count(*) AS count, extract(epoch FROM now() - min(created_at))::float8 AS age
           FROM webhook_deliveries WHERE status = 'pending'`,
      );
      const row = result.rows[0]!;
      return { count: Number(row.count), oldestAgeSeconds: row.age ?? 0 };
    });
  }
}

interface DeliveryRow {
  id: string;
  seq: string;
  event_id: string;
  endpoint_id: string;
  type: string;
  payout_id: string;
  payout_version: number;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: Date | null;
  delivered_at: Date | null;
  created_at: Date;
}

const DELIVERY_COLUMNS = [
  'id',
  'seq',
  'event_id',
  'endpoint_id',
  'type',
  'payout_id',
  'payout_version',
  'status',
  'attempts',
  'last_status_code',
  'last_error',
  'next_attempt_at',
  'delivered_at',
  'created_at',
];

function toDelivery(row: DeliveryRow): WebhookDelivery {
  return {
    id: row.id,
    eventId: row.event_id,
    endpointId: row.endpoint_id,
    type: row.type as WebhookEventType,
    payoutId: row.payout_id,
    payoutVersion: row.payout_version,
    status: row.status,
    attempts: row.attempts,
    lastStatusCode: row.last_status_code,
    lastError: row.last_error,
    nextAttemptAt: row.next_attempt_at,
    deliveredAt: row.delivered_at,
    createdAt: row.created_at,
  };
}

interface DeliveryJoinRow {
  id: string;
  event_id: string;
  type: string;
  payout_version: number;
  payout: Record<string, unknown>;
  created_at: Date;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  endpoint_id: string;
  url: string;
  endpoint_status: 'enabled' | 'disabled';
  deleted_at: Date | null;
  secret_ciphertext: Buffer;
  previous_secret_ciphertext: Buffer | null;
  previous_secret_expires_at: Date | null;
}

/** The payout row a delivery keeps (JSON: times as text, the amount as text) as the row `toPayout` reads. */
function payoutRowOf(json: Record<string, unknown>): PayoutRow {
  return {
    ...json,
    created_at: new Date(json.created_at as string),
    updated_at: new Date(json.updated_at as string),
  } as unknown as PayoutRow;
}
