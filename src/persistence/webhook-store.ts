/**
 * Webhook endpoints and deliveries on PostgreSQL: the domain's `WebhookStore`. Secrets are sealed with
 * `SecretBox` before they reach a row and opened only for signing; no read for the API returns them.
 */
import type { Knex } from 'knex';
import type {
  WebhookEndpoint,
  WebhookEndpointChanges,
  WebhookEndpointPage,
  WebhookEventType,
  WebhookStore,
} from '../domain/webhooks.js';
import { translated } from './payout-store.js';
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

export class PgWebhookStore implements WebhookStore {
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
}
