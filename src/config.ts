/**
 * The service's configuration: every key with its environment variable, a default that works against the
 * local PostgreSQL and RabbitMQ, and a doc line. Parsed once at start; a bad value stops the process with a
 * message naming the variable.
 */
import { MINOR_DIGITS, parseCurrencyTable } from './domain/currency.js';
import type { CurrencyTable } from './domain/currency.js';
import { parseDecimal } from './domain/money.js';

/**
 * The longest AMQP namespace (`AMQP_NAMESPACE`), in characters: ASCII only, so also in bytes. RabbitMQ refuses
 * names over 255 bytes; the longest name built from a namespace is a delay queue's,
 * `payouts.process.retry.<delay>ms<namespace>`, whose delay has at most 9 digits (`RETRY_DELAYS_MS`): 33 + 64 = 97
 * bytes, well inside the limit.
 */
export const AMQP_NAMESPACE_MAX_LENGTH = 64;

/** What an AMQP namespace may be: the one rule, checked by the configuration and by `topologyNames`. */
export const AMQP_NAMESPACE = new RegExp(`^[A-Za-z0-9._-]{0,${AMQP_NAMESPACE_MAX_LENGTH}}$`);

/** Why `namespace` cannot suffix queue and exchange names, or null when it can. */
export function namespaceProblem(namespace: string): string | null {
  return AMQP_NAMESPACE.test(namespace)
    ? null
    : `expected at most ${AMQP_NAMESPACE_MAX_LENGTH} of A-Z a-z 0-9 . _ -`;
}

export interface Config {
  /** PostgreSQL connection string. */
  databaseUrl: string;
  /** `migrate`'s connection, allowed to change the schema (`DATABASE_MIGRATION_URL`); `DATABASE_URL` when unset. */
  databaseMigrationUrl: string;
  /** The role the running roles connect as (`DATABASE_APP_ROLE`): rows only, no schema; `migrate` creates it. */
  databaseAppRole: string;
  /** Its password (`DATABASE_APP_PASSWORD`), set by `migrate` when given. */
  databaseAppPassword: string | undefined;
  /** Size of the PostgreSQL pool of one process. */
  databasePoolMax: number;
  /**
   * Longest one statement may run (`DATABASE_STATEMENT_TIMEOUT_MS`, PostgreSQL's `statement_timeout` on every
   * connection of the roles), in milliseconds. A statement that has not answered 2 s after it counts as a lost
   * connection on the client's side too (a silent socket), and a connection is waited for at most this long.
   */
  databaseStatementTimeoutMs: number;
  /** Longest one statement waits for a lock (`DATABASE_LOCK_TIMEOUT_MS`, `lock_timeout`), in milliseconds. */
  databaseLockTimeoutMs: number;
  /**
   * Longest a transaction may sit idle between its statements before PostgreSQL ends the session
   * (`DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS`, `idle_in_transaction_session_timeout`), in milliseconds.
   */
  databaseIdleInTransactionTimeoutMs: number;
  /** RabbitMQ connection string. */
  amqpUrl: string;
  /** `host:port` of every node of a RabbitMQ cluster (`AMQP_HOSTS`); empty: the host of `AMQP_URL` alone. */
  amqpHosts: string[];
  /** Suffix appended to every queue and exchange name (tests use one per run). */
  amqpNamespace: string;
  /** Queues are deleted after this long unused, in milliseconds; 0 keeps them forever (tests set it so a crashed run leaves nothing). */
  amqpQueueExpiresMs: number;
  /** HTTP port of the API (0 picks a free port). */
  port: number;
  /** HTTP bind address of the API. */
  host: string;
  /**
   * Longest an API request may take, from its first byte to its answer, in milliseconds: a request still
   * unanswered then is answered 503 with `Retry-After` (`REQUEST_TIMEOUT_MS`).
   */
  requestTimeoutMs: number;
  /** Port of /metrics, /healthz and /readyz for the worker, relay and sweeper roles (0 picks a free port). */
  metricsPort: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** `json`, `pretty` (readable lines; needs the dev dependency pino-pretty) or `auto`: pretty on a terminal. */
  logFormat: LogFormat;
  /** Accepted currencies with their minor digits and maximum amount. */
  currencies: CurrencyTable;
  /** Simulated provider: delay of every submit, in milliseconds. */
  providerDelayMs: number;
  /**
   * Simulated provider: longest wait for its answer before the call counts as the provider's unavailability (a
   * retry of the payout spent), in milliseconds. The worker bounds a call at 3 × this as a last resort, counted as
   * an outage of ours.
   */
  providerTimeoutMs: number;
  /** Simulated provider: share of submits that fail transiently (0..1). */
  providerFaultRate: number;
  /** Simulated provider: seed of the fault generator. */
  providerSeed: number;
  /** Simulated provider: IBANs it refuses (permanent failure `recipient_blocked`). */
  providerBlockedIbans: string[];
  /** Simulated provider: per-currency limit above which it refuses (permanent failure `provider_limit_exceeded`). */
  providerLimits: Record<string, string>;
  /** Worker: messages processed at once by one worker process. */
  workerConcurrency: number;
  /** The payout machine: back-off before each retry of a provider command, in milliseconds; their count is the number of retries. Also the delay queues' tiers. */
  retryDelaysMs: number[];
  /** The payout machine: sweeper re-drives of one payout before it needs a person (`needs_attention`). */
  maxRedrives: number;
  /** Worker: how long relays leave alone a command the worker carries out itself, in milliseconds. */
  commandLeaseMs: number;
  /** Description changes one payout may have (its `DESCRIBE` history rows); the next is refused (409). Status changes are not counted. */
  maxDescriptionChanges: number;
  /** Relay: rows claimed per batch. */
  relayBatchSize: number;
  /**
   * Relay: rounds in flight at once, each with its own batch (claimed under `SKIP LOCKED` and a lease, like
   * another relay's): while one round waits for its confirms, another claims or marks.
   */
  relayConcurrency: number;
  /** Relay: polling interval when no NOTIFY arrives, in milliseconds. */
  relayPollMs: number;
  /** Relay: how long a claimed row stays leased to one relay, in milliseconds. */
  relayLeaseMs: number;
  /** Relay: published rows older than this are pruned, in hours. */
  outboxRetentionHours: number;
  /** Sweeper: a payout in `created` or `processing` longer than this is re-driven, in seconds. */
  stuckAfterSeconds: number;
  /** Sweeper: interval between two sweeps, in milliseconds. */
  sweepIntervalMs: number;
  /** Idempotency keys are kept this long, in hours. */
  idempotencyTtlHours: number;
  /**
   * Webhooks: the AES-256-GCM key that encrypts endpoints' signing secrets at rest (`WEBHOOK_SECRET_KEY`, 32 bytes
   * in base64). The default is a development key, public in this repository: set your own in production.
   */
  webhookSecretKey: Buffer;
  /** Webhooks: endpoints may use `http` URLs (`WEBHOOK_ALLOW_HTTP`); otherwise `https` only. */
  webhookAllowHttp: boolean;
  /**
   * Webhooks: endpoints may resolve to loopback, private, link-local or metadata addresses
   * (`WEBHOOK_ALLOW_PRIVATE`; development and tests).
   */
  webhookAllowPrivate: boolean;
  /** Webhooks: the wait before each retry of a delivery, in milliseconds (`WEBHOOK_RETRY_SCHEDULE`, `1m,5m,…`). */
  webhookRetryScheduleMs: number[];
  /** Webhooks: how long a rotated-out secret keeps signing, in milliseconds (`WEBHOOK_SECRET_OVERLAP`). */
  webhookSecretOverlapMs: number;
  /** Webhooks: longest wait for a receiver's answer, in milliseconds (`WEBHOOK_TIMEOUT_MS`). */
  webhookTimeoutMs: number;
  /** Webhooks: an endpoint is disabled after this many events in a row failed for good (`WEBHOOK_DISABLE_AFTER`). */
  webhookDisableAfter: number;
  /** Webhooks: deliveries one dispatcher process makes at once (`WEBHOOK_CONCURRENCY`). */
  webhookConcurrency: number;
  /**
   * Webhooks: a pending delivery whose attempt is this much overdue, with no message waiting in the outbox, lost its
   * message and is queued again (`WEBHOOK_REDRIVE_AFTER`), in milliseconds.
   */
  webhookRedriveAfterMs: number;
  /** Webhooks: delivered and failed deliveries are pruned after this many days (`WEBHOOK_RETENTION_DAYS`). */
  webhookRetentionDays: number;
  /**
   * Operator console: its cookies carry `Secure` (`CONSOLE_SECURE_COOKIES`), so a browser sends them over HTTPS
   * only (and to http://localhost). Turn it off only for development over plain HTTP on another host.
   */
  consoleSecureCookies: boolean;
  /** Operator console: a session ends this many hours after sign-in (`CONSOLE_SESSION_HOURS`). */
  consoleSessionHours: number;
}

export class ConfigError extends Error {
  constructor(key: string, message: string) {
    super(`Invalid configuration ${key}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function str(env: Env, key: string, fallback: string): string {
  const value = env[key];
  return value === undefined || value === '' ? fallback : value;
}

function int(env: Env, key: string, fallback: number, min: number, max: number): number {
  const raw = str(env, key, String(fallback));
  if (!/^\d+$/.test(raw)) throw new ConfigError(key, `expected an integer, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(key, `expected ${min}..${max}, got ${value}`);
  return value;
}

function rate(env: Env, key: string, fallback: string): number {
  const raw = str(env, key, fallback);
  if (!/^(0(\.\d+)?|1(\.0+)?)$/.test(raw))
    throw new ConfigError(key, `expected a number in 0..1, got "${raw}"`);
  return Number(raw);
}

function url(env: Env, key: string, fallback: string, protocols: string[]): string {
  const raw = str(env, key, fallback);
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(key, 'not a URL');
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(key, `expected a ${protocols.join(' or ')} URL`);
  }
  return raw;
}

function list(env: Env, key: string, fallback: string): string[] {
  return str(env, key, fallback)
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/** `host:port,host:port,…` (a name or an IPv4 address, and a port); empty when not set. */
function hostList(env: Env, key: string): string[] {
  const hosts = list(env, key, '');
  for (const host of hosts) {
    const match = /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(host);
    if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535)
      throw new ConfigError(key, `expected host:port[,host:port…], got "${host}"`);
  }
  return hosts;
}

function bool(env: Env, key: string, fallback: boolean): boolean {
  const raw = str(env, key, String(fallback));
  if (raw !== 'true' && raw !== 'false') throw new ConfigError(key, `expected true or false, got "${raw}"`);
  return raw === 'true';
}

const DURATION_UNITS_MS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000 };

/** A duration with its unit (`30s`, `5m`, `24h`), in milliseconds: at least 1 s, at most 7 days. */
export function parseDuration(text: string): number | null {
  const match = /^([1-9]\d{0,5})(s|m|h)$/.exec(text);
  if (!match) return null;
  const ms = Number(match[1]) * DURATION_UNITS_MS[match[2]!]!;
  return ms <= 7 * 24 * 3_600_000 ? ms : null;
}

function duration(env: Env, key: string, fallback: string): number {
  const raw = str(env, key, fallback);
  const ms = parseDuration(raw);
  if (ms === null)
    throw new ConfigError(key, `expected a duration such as 30s, 5m or 24h (at most 7 days), got "${raw}"`);
  return ms;
}

function durations(env: Env, key: string, fallback: string): number[] {
  const items = list(env, key, fallback);
  if (items.length === 0 || items.length > 20) throw new ConfigError(key, 'expected 1 to 20 durations');
  return items.map((item) => {
    const ms = parseDuration(item);
    if (ms === null) throw new ConfigError(key, `"${item}" is not a duration such as 30s, 5m or 24h`);
    return ms;
  });
}

/**
 * The development default of `WEBHOOK_SECRET_KEY`: public, so that `make run` and `make webhooks` start with no
 * configuration. Secrets encrypted with it are only as safe as the database; production sets its own key.
 */
export const DEVELOPMENT_WEBHOOK_SECRET_KEY = 'ZGV2ZWxvcG1lbnQtb25seS13ZWJob29rLWtleS0zMmI=';

function secretKey(env: Env, key: string, fallback: string): Buffer {
  const raw = str(env, key, fallback);
  const bytes = /^[A-Za-z0-9+/]{43}=$/.test(raw) ? Buffer.from(raw, 'base64') : Buffer.alloc(0);
  if (bytes.length !== 32)
    throw new ConfigError(key, 'expected 32 bytes in base64 (openssl rand -base64 32)');
  return bytes;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** `LOG_FORMAT`: JSON lines, readable lines, or readable lines only when writing to a terminal. */
const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Default maximum amount per currency, in major units: roughly one million US dollars each. */
export const DEFAULT_CURRENCY_MAX =
  'USD:1000000,EUR:1000000,GBP:800000,RUB:100000000,KZT:500000000,JPY:150000000,KWD:300000,BHD:375000,CHF:1000000';

export function loadConfig(env: Env = process.env): Config {
  const logLevel = str(env, 'LOG_LEVEL', 'info');
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `expected one of ${LOG_LEVELS.join(', ')}`);
  }
  const logFormat = str(env, 'LOG_FORMAT', 'auto');
  if (!(LOG_FORMATS as readonly string[]).includes(logFormat)) {
    throw new ConfigError('LOG_FORMAT', `expected one of ${LOG_FORMATS.join(', ')}`);
  }
  const currencies = wrap('CURRENCIES', () =>
    parseCurrencyTable(
      list(env, 'CURRENCIES', 'USD,EUR,GBP,RUB,KZT,JPY,KWD,BHD,CHF'),
      str(env, 'CURRENCY_MAX', DEFAULT_CURRENCY_MAX),
    ),
  );
  const retryDelaysMs = list(env, 'RETRY_DELAYS_MS', '1000,5000,30000').map((item) => {
    if (!/^\d{1,9}$/.test(item)) throw new ConfigError('RETRY_DELAYS_MS', `"${item}" is not a delay in ms`);
    return Number(item);
  });
  if (retryDelaysMs.length === 0 || retryDelaysMs.length > 10) {
    throw new ConfigError('RETRY_DELAYS_MS', 'expected 1 to 10 delays');
  }
  const providerLimits: Record<string, string> = {};
  for (const entry of list(env, 'PROVIDER_LIMITS', 'USD:250000,EUR:250000,GBP:200000,JPY:30000000')) {
    const match = /^([A-Z]{3}):(\d{1,15}(?:\.\d{1,3})?)$/.exec(entry);
    if (!match) throw new ConfigError('PROVIDER_LIMITS', `"${entry}" is not CUR:amount`);
    const [, currency = '', amount = ''] = match;
    const digits = MINOR_DIGITS[currency];
    if (digits === undefined)
      throw new ConfigError('PROVIDER_LIMITS', `"${currency}" is not a supported currency`);
    // Converted here only to refuse it early; the provider converts it again, the same way (src/domain/money.ts).
    if ('problem' in parseDecimal(amount, digits)) {
      throw new ConfigError('PROVIDER_LIMITS', `"${entry}" has more than ${digits} decimal places`);
    }
    providerLimits[currency] = amount;
  }
  const namespace = str(env, 'AMQP_NAMESPACE', '');
  const namespaceIssue = namespaceProblem(namespace);
  if (namespaceIssue) throw new ConfigError('AMQP_NAMESPACE', namespaceIssue);
  const stuckAfterSeconds = int(env, 'STUCK_AFTER_SECONDS', 300, 1, 1_000_000);
  const retryTotalMs = retryDelaysMs.reduce((sum, delay) => sum + delay, 0);
  if (stuckAfterSeconds * 1000 <= retryTotalMs) {
    // Otherwise the sweeper would re-drive every payout that is merely waiting for its next retry.
    throw new ConfigError(
      'STUCK_AFTER_SECONDS',
      `must exceed the sum of RETRY_DELAYS_MS (${retryTotalMs} ms)`,
    );
  }
  const providerTimeoutMs = int(env, 'PROVIDER_TIMEOUT_MS', 10_000, 100, 600_000);
  const commandLeaseMs = int(env, 'COMMAND_LEASE_MS', 60_000, 1_000, 3_600_000);
  if (commandLeaseMs <= 3 * providerTimeoutMs) {
    // Otherwise a relay could publish a command the worker is still carrying out (harmless, but wasted work).
    throw new ConfigError(
      'COMMAND_LEASE_MS',
      `must exceed 3 × PROVIDER_TIMEOUT_MS (${3 * providerTimeoutMs} ms)`,
    );
  }
  const databaseStatementTimeoutMs = int(env, 'DATABASE_STATEMENT_TIMEOUT_MS', 10_000, 100, 3_600_000);
  const databaseLockTimeoutMs = int(env, 'DATABASE_LOCK_TIMEOUT_MS', 5_000, 100, 3_600_000);
  if (databaseLockTimeoutMs > databaseStatementTimeoutMs) {
    // The statement would be cancelled first: the lock wait would never be what ends it.
    throw new ConfigError(
      'DATABASE_LOCK_TIMEOUT_MS',
      `must not exceed DATABASE_STATEMENT_TIMEOUT_MS (${databaseStatementTimeoutMs} ms)`,
    );
  }
  const databaseIdleInTransactionTimeoutMs = int(
    env,
    'DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS',
    30_000,
    1_000,
    3_600_000,
  );
  return {
    databaseUrl: url(env, 'DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/payouts', [
      'postgres:',
      'postgresql:',
    ]),
    databaseMigrationUrl: url(
      env,
      'DATABASE_MIGRATION_URL',
      env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/payouts',
      ['postgres:', 'postgresql:'],
    ),
    databaseAppRole: wrap('DATABASE_APP_ROLE', () => {
      const role = str(env, 'DATABASE_APP_ROLE', 'payouts_app');
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(role))
        throw new Error('expected a lower-case PostgreSQL role name');
      return role;
    }),
    databaseAppPassword: env.DATABASE_APP_PASSWORD === '' ? undefined : env.DATABASE_APP_PASSWORD,
    databasePoolMax: int(env, 'DATABASE_POOL_MAX', 10, 1, 200),
    databaseStatementTimeoutMs,
    databaseLockTimeoutMs,
    databaseIdleInTransactionTimeoutMs,
    amqpUrl: url(env, 'AMQP_URL', 'amqp://guest:guest@127.0.0.1:5672', ['amqp:', 'amqps:']),
    amqpHosts: hostList(env, 'AMQP_HOSTS'),
    amqpNamespace: namespace,
    amqpQueueExpiresMs: int(env, 'AMQP_QUEUE_EXPIRES_MS', 0, 0, 2 ** 31 - 1),
    port: int(env, 'PORT', 8000, 0, 65535),
    host: str(env, 'HOST', '127.0.0.1'),
    requestTimeoutMs: int(env, 'REQUEST_TIMEOUT_MS', 30_000, 1_000, 600_000),
    metricsPort: int(env, 'METRICS_PORT', 9100, 0, 65535),
    logLevel: logLevel as Config['logLevel'],
    logFormat: logFormat as LogFormat,
    currencies,
    providerDelayMs: int(env, 'PROVIDER_DELAY_MS', 500, 0, 600_000),
    providerTimeoutMs,
    providerFaultRate: rate(env, 'PROVIDER_FAULT_RATE', '0'),
    providerSeed: int(env, 'PROVIDER_SEED', 42, 0, 2 ** 31),
    providerBlockedIbans: list(env, 'PROVIDER_BLOCKED_IBANS', 'GB33BUKB20201555555555').map((iban) =>
      iban.replace(/\s+/g, '').toUpperCase(),
    ),
    providerLimits,
    workerConcurrency: int(env, 'WORKER_CONCURRENCY', 128, 1, 256),
    retryDelaysMs,
    maxRedrives: int(env, 'MAX_REDRIVES', 5, 0, 1_000),
    commandLeaseMs,
    maxDescriptionChanges: int(env, 'MAX_DESCRIPTION_CHANGES', 100, 1, 100_000),
    relayBatchSize: int(env, 'RELAY_BATCH_SIZE', 100, 1, 10_000),
    relayConcurrency: int(env, 'RELAY_CONCURRENCY', 4, 1, 64),
    relayPollMs: int(env, 'RELAY_POLL_MS', 1000, 10, 600_000),
    relayLeaseMs: int(env, 'RELAY_LEASE_MS', 30_000, 1_000, 3_600_000),
    outboxRetentionHours: int(env, 'OUTBOX_RETENTION_HOURS', 168, 1, 100_000),
    stuckAfterSeconds,
    sweepIntervalMs: int(env, 'SWEEP_INTERVAL_MS', 30_000, 10, 3_600_000),
    idempotencyTtlHours: int(env, 'IDEMPOTENCY_TTL_HOURS', 24, 24, 100_000),
    webhookSecretKey: secretKey(env, 'WEBHOOK_SECRET_KEY', DEVELOPMENT_WEBHOOK_SECRET_KEY),
    webhookAllowHttp: bool(env, 'WEBHOOK_ALLOW_HTTP', false),
    webhookAllowPrivate: bool(env, 'WEBHOOK_ALLOW_PRIVATE', false),
    webhookRetryScheduleMs: durations(env, 'WEBHOOK_RETRY_SCHEDULE', '1m,5m,30m,2h,5h,10h,10h,24h,24h'),
    webhookSecretOverlapMs: duration(env, 'WEBHOOK_SECRET_OVERLAP', '24h'),
    webhookTimeoutMs: int(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 100, 120_000),
    webhookDisableAfter: int(env, 'WEBHOOK_DISABLE_AFTER', 50, 1, 1_000_000),
    webhookConcurrency: int(env, 'WEBHOOK_CONCURRENCY', 16, 1, 256),
    webhookRedriveAfterMs: duration(env, 'WEBHOOK_REDRIVE_AFTER', '1h'),
    webhookRetentionDays: int(env, 'WEBHOOK_RETENTION_DAYS', 30, 1, 3650),
    consoleSecureCookies: bool(env, 'CONSOLE_SECURE_COOKIES', true),
    consoleSessionHours: int(env, 'CONSOLE_SESSION_HOURS', 8, 1, 24),
  };
}

function wrap<T>(key: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(key, (error as Error).message);
  }
}
