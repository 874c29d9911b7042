/**
 * The ports of the domain: what the payout service needs from the outside world, in the domain's own words. The
 * store keeps payouts (src/persistence implements it on PostgreSQL; the unit tests on memory), the provider moves
 * money (src/adapters), the scheduler turns a payout's commands into messages (src/messaging), the waker tells
 * relays that messages are waiting. How a port does its work — SQL, batching, named statements, locks — is its own
 * business.
 */
import type { PayoutFailure } from '../machines/payout.machine.js';
import type { PayoutStage, PayoutStatus, PersistedPayoutSnapshot } from '../machines/payout-lifecycle.js';
import type { Payout, PayoutHistoryEntry, PayoutSummary } from './payout.js';
import type { KeyProof, Role } from './principal.js';
import type { ScheduledMessage } from './scheduling.js';

export type { OutboxWaker, ProcessingScheduler, ScheduledMessage } from './scheduling.js';
export type { PaymentProvider, ProviderResult } from './provider.js';

/** One payout of a client, deleted ones only when asked for. */
export interface PayoutRead {
  clientId: string;
  id: string;
  includeDeleted: boolean;
  /** A remembered caller's key, checked by the read itself: `Unauthenticated` when no longer active. */
  proof?: KeyProof;
}

/** A history row as written; the store sets its id and time. */
export type NewHistoryEntry = Omit<PayoutHistoryEntry, 'id' | 'at'> & { payoutId: string };

/** What a change sets on a payout; absent means unchanged. */
export interface PayoutChanges {
  status?: PayoutStatus;
  /** With `status`: the stage it comes with (null once final). */
  stage?: PayoutStage | null;
  snapshot?: PersistedPayoutSnapshot;
  /** With `snapshot`: the machine version it was written by, when it differs from the payout's (an upgrade). */
  machineVersion?: number;
  description?: string | null;
  failure?: PayoutFailure | null;
  deleted?: boolean;
}

/**
 * One change of an existing payout, written only if the payout is still at `expectedVersion` (then at version + 1),
 * with its history row and the commands it issued, all or nothing.
 */
export interface VersionedChange {
  clientId: string;
  id: string;
  expectedVersion: number;
  changes: PayoutChanges;
  history: Omit<NewHistoryEntry, 'payoutId' | 'to'>;
  /** The commands the change issued: messages stored with it. */
  commands?: readonly ScheduledMessage[];
  /** The command the change answered: its waiting messages are withdrawn with it. */
  settledSeq?: number | null;
  /** The webhook event the change causes, written with it. */
  webhookEvent?: NewWebhookEvent | null;
}

/**
 * A webhook event a change causes, written by the same statement as the change: one delivery per enabled endpoint
 * of the payout's client subscribed to `type` (none, at no cost, when the client has none).
 */
export interface NewWebhookEvent {
  /** `evt_…`, shared by the deliveries of this event to every endpoint. */
  eventId: string;
  type: string;
}

/** The outcome a create stores under its idempotency key: what a replay answers, exactly. */
export interface IdempotentOutcome {
  key: string;
  requestHash: string;
  /** The answer as the caller's transport renders it (opaque to the domain). */
  status: number;
  body: Record<string, unknown>;
  /** An outcome older than this is expired: its key may be used again. */
  ttlHours: number;
}

export interface StoredOutcome {
  requestHash: string;
  payoutId: string;
  status: number;
  body: Record<string, unknown>;
}

/**
 * What became of a create: `created`; `in_flight` when another create with the same key is running; `key_used`
 * when the key already holds a live outcome (a replay or a mismatch).
 */
/** `unauthenticated`: the create's key proof failed (revoked or expired since it was remembered); nothing written. */
export type CreateOutcome = 'created' | 'in_flight' | 'key_used' | 'unauthenticated';

/** The most payouts a page of the list holds. */
export const MAX_PAGE_SIZE = 100;

export interface PayoutListFilter {
  limit: number;
  /** Only payouts listed after this position (the last one of the previous page). */
  after?: string;
  status?: PayoutStatus;
  stage?: PayoutStage;
  currency?: string;
  createdGte?: Date;
  createdLt?: Date;
}

/** A page of payouts, newest first, with the position of its last one and whether more follow. */
export interface PayoutListPage {
  payouts: PayoutSummary[];
  last: string | null;
  hasMore: boolean;
}

/** A payout as the API shows it to one principal: its `PayoutResource` as JSON text, and its version. */
export interface RenderedPayout {
  version: number;
  resource: string;
}

/**
 * A page as the API shows it to one principal: each payout's `PayoutResource` as JSON text, newest first, and the
 * page's position.
 */
export interface PayoutResourcePage {
  resources: string[];
  last: string | null;
  hasMore: boolean;
}

/** Which rows of one payout's history: a page, oldest first, after a position. */
export interface PayoutHistoryQuery {
  /** Rows per page; 0 asks for none (only whether any follow, or the total). */
  limit: number;
  /** Only rows after this position (the last one of the previous page). */
  after?: string;
  /** Only rows of this event, e.g. `DESCRIBE` (the description changes). */
  event?: string;
  /** Also count every row of the payout that matches `event`, wherever it is (not only this page): `total`. */
  withTotal?: boolean;
}

/**
 * A page of a payout's history, oldest first, with the position of its last row and whether more follow; with
 * `withTotal`, how many rows match in all.
 */
export interface PayoutHistoryPage {
  entries: PayoutHistoryEntry[];
  last: string | null;
  hasMore: boolean;
  total?: number;
}

export interface StuckPayout {
  id: string;
  clientId: string;
  status: PayoutStatus;
}

export interface PayoutStore {
  /**
   * Stores a new payout with its first history row, its first message and, with an idempotency key, its outcome,
   * all or nothing (see `CreateOutcome`).
   */
  create(
    payout: Payout,
    first: Omit<NewHistoryEntry, 'payoutId' | 'from' | 'to'>,
    message: ScheduledMessage,
    outcome: IdempotentOutcome | null,
    webhookEvent?: NewWebhookEvent,
    proof?: KeyProof,
  ): Promise<CreateOutcome>;
  /** The live outcome stored under a client's idempotency key. */
  findOutcome(clientId: string, key: string, ttlHours: number): Promise<StoredOutcome | null>;
  find(read: PayoutRead): Promise<Payout | null>;
  /** Writes a change under its version check: the payout as changed, or null when its version moved on. */
  save(change: VersionedChange): Promise<Payout | null>;
  /**
   * The last resort of a busy payout: reads it so that nobody else can change it until `prepare`'s change is
   * written. Null when there is no such payout. An error thrown by `prepare` writes nothing.
   */
  saveLocked(read: PayoutRead, prepare: (current: Payout) => VersionedChange): Promise<Payout | null>;
  /** The same read, the payout as the API shows it to a principal of `role` (`toPayoutResource`), as JSON text. */
  findResource(read: PayoutRead, role: Role): Promise<RenderedPayout | null>;
  /** With a `proof`, `Unauthenticated` when the remembered key is no longer active. */
  list(clientId: string, filter: PayoutListFilter, proof?: KeyProof): Promise<PayoutListPage>;
  /** The same page, each payout as the API shows it to a principal of `role` (`toPayoutResource`). */
  listResources(
    clientId: string,
    role: Role,
    filter: PayoutListFilter,
    proof?: KeyProof,
  ): Promise<PayoutResourcePage>;
  /**
   * A page of a payout's history (not scoped by client: the caller has read the payout first). Positions are the
   * rows' ids, which follow the order the rows were committed in for any one payout: its changes are written one
   * at a time, each under the payout's row lock.
   */
  history(payoutId: string, query: PayoutHistoryQuery): Promise<PayoutHistoryPage>;
  /**
   * Unfinished payouts whose last message is older than the threshold, with none waiting and not given to a person,
   * across clients; claimed (their clock moved) so that two sweepers never take the same one.
   */
  claimStuck(olderThanSeconds: number, limit: number): Promise<StuckPayout[]>;
  /** Unfinished payouts in their status past the threshold, by status (not those given to a person); and those. */
  countStuck(olderThanSeconds: number): Promise<{ stuck: Record<string, number>; needsAttention: number }>;
  /**
   * A client's unfinished payouts that wait for a person (stage `needs_attention`) or have been in their status
   * longer than `stuckAfterSeconds`, oldest first (the longest in their status first), at most `limit`.
   */
  listNeedingAttention(clientId: string, stuckAfterSeconds: number, limit: number): Promise<Payout[]>;
  /** Forgets idempotency outcomes past their retention, as many as a sweep's time allows; returns how many. */
  deleteExpiredOutcomes(ttlHours: number): Promise<number>;
}

/** An API key as the store keeps it: its hash, never the key. */
export interface ApiKeyRecord {
  id: string;
  clientId: string;
  role: Exclude<Role, 'worker' | 'system'>;
}

export interface ApiKeyListing {
  client: string;
  keyId: string;
  /** The key's first characters (12 for keys issued since they were recorded so), never the key. */
  prefix: string;
  role: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

export interface NewApiKey {
  id: string;
  role: ApiKeyRecord['role'];
  hash: string;
  prefix: string;
  expiresAt: Date | null;
}

export interface ApiKeyStore {
  /** Stores a key for the named client, creating the client on its first key. Returns the client's id. */
  addKey(clientName: string, key: NewApiKey): Promise<string>;
  /** The key with this hash, unless revoked or expired. */
  findActive(hash: string): Promise<ApiKeyRecord | null>;
  /** Records that these keys were used now. */
  touch(keyIds: readonly string[]): Promise<void>;
  revokeAll(clientName: string): Promise<number>;
  /** Revokes one key; false when there is no such active key. */
  revokeOne(keyId: string): Promise<boolean>;
  /** Every key, or those of one client. */
  list(clientName?: string): Promise<ApiKeyListing[]>;
}
