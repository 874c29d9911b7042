/**
 * Objection models: one per table, rows exactly as stored (snake case). They never leave `persistence/`;
 * repositories map them to domain values.
 */
import { Model } from 'objection';

export class ClientRow extends Model {
  static override tableName = 'clients';
  id!: string;
  name!: string;
  created_at!: Date;
}

export class ApiKeyRow extends Model {
  static override tableName = 'api_keys';
  id!: string;
  client_id!: string;
  role!: 'client' | 'operator';
  key_hash!: string;
  key_prefix!: string;
  created_at!: Date;
  revoked_at!: Date | null;
}

export class PayoutRow extends Model {
  static override tableName = 'payouts';
  id!: string;
  /** bigserial, as pg returns it: a string. */
  seq!: string;
  client_id!: string;
  /** bigint minor units, as pg returns it: a string. */
  amount_minor!: string;
  currency!: string;
  recipient!: Record<string, unknown>;
  status!: string;
  stage!: string | null;
  snapshot!: Record<string, unknown>;
  machine_version!: number;
  version!: number;
  description!: string | null;
  failure_code!: string | null;
  failure_message!: string | null;
  created_at!: Date;
  updated_at!: Date;
  scheduled_at!: Date;
  status_changed_at!: Date;
  deleted_at!: Date | null;
}

export class PayoutEventRow extends Model {
  static override tableName = 'payout_events';
  id!: string;
  payout_id!: string;
  from_status!: string | null;
  to_status!: string;
  event!: string;
  actor!: string;
  actor_role!: string;
  reason!: string | null;
  request_id!: string | null;
  at!: Date;
}

export class OutboxRow extends Model {
  static override tableName = 'outbox';
  id!: string;
  seq!: string;
  topic!: string;
  payload!: Record<string, unknown>;
  created_at!: Date;
  published_at!: Date | null;
  attempts!: number;
  locked_until!: Date | null;
  last_error!: string | null;
}

export class IdempotencyKeyRow extends Model {
  static override tableName = 'idempotency_keys';
  static override idColumn = ['client_id', 'key'];
  client_id!: string;
  key!: string;
  request_hash!: string;
  payout_id!: string;
  response_status!: number;
  response_body!: Record<string, unknown>;
  created_at!: Date;
}
