/**
 * The one program. `node dist/src/main.js <role>` (or `tsx src/main.ts <role>`) where role is one of the
 * commands below. Configuration comes from the environment (src/config.ts).
 */
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { ConfigError, loadConfig } from './config.js';
import { ApiKeys } from './domain/api-keys.js';
import type { ApiKeyListing } from './domain/api-keys.js';
import { ValidationFailed } from './domain/errors.js';
import { dlqDrop, dlqList, dlqReplay, migrateTopology } from './dlq/commands.js';
import type { DeadLetter, DeadLetterFilter, DeadLetterQueueName } from './dlq/dead-letters.js';
import { DEAD_LETTER_QUEUES } from './dlq/dead-letters.js';
import { deadLetterFields } from './dlq/dead-letters.js';
import { isDatabaseUnavailable, unavailabilityCause } from './database-errors.js';
import { createLogger, logDestination } from './logger.js';
import { BrokerUnreachable } from './messaging/amqp.js';
import { PgApiKeyStore } from './persistence/client-repository.js';
import { createDb, ensureDatabase, migrateLatest } from './persistence/db.js';
import { ensureRuntimeRole } from './persistence/runtime-role.js';
import type { RunningRole } from './roles/roles.js';
import { runApi, runDev, runRelay, runSweeper, runWebhooks, runWorker } from './roles/roles.js';
import { handleShutdownSignals } from './shutdown.js';

type Command = (args: string[]) => Promise<void>;

/**
 * A command that cannot do what it was asked, said to the operator as one line on stderr (no log line, no stack):
 * exit code 2 for bad usage or input, 1 when the input was fine but there is nothing to act on.
 */
class CommandRefused extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
    this.name = 'CommandRefused';
  }
}

const usage = (text: string) => new CommandRefused(`usage: ${text}`, 2);

/** A failure the operator can act on, as one line: a refusal, or the domain's invalid fields ("role must be …"). */
function refusalOf(error: unknown): CommandRefused | undefined {
  if (error instanceof CommandRefused) return error;
  if (error instanceof ValidationFailed) {
    const fields = error.fields ?? [];
    const said = fields.map(({ field, message }) => (field ? `${field} ${message}` : message)).join('; ');
    return new CommandRefused(said || error.detail, 2);
  }
  return undefined;
}

/** The one-shot commands an operator runs by hand: any failure is one line on stderr, its stack in the debug log. */
const ONE_SHOT = new Set(['key', 'key-revoke', 'key-list', 'dlq-list', 'dlq-replay', 'dlq-drop']);

function positiveInt(raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  if (!/^[1-9]\d{0,6}$/.test(raw)) throw new CommandRefused(`"${raw}" is not a positive count`, 2);
  return Number(raw);
}

/**
 * The options of `dlq-replay` and `dlq-drop`, each `--name value`. An empty value counts as not given, so the
 * Makefile can pass every one of its variables as it is.
 */
function dlqOptions(
  command: string,
  args: string[],
  extra: string[],
  base = ['reason', 'id', 'limit', 'dry-run', 'queue'],
): Record<string, string | undefined> {
  const names = [...base, ...extra];
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: Object.fromEntries(names.map((name) => [name, { type: 'string' as const }])),
    }));
  } catch {
    throw usage(`${command} ${names.map((name) => `[--${name} <value>]`).join(' ')}`);
  }
  return Object.fromEntries(
    names.map((name) => [
      name,
      typeof values[name] === 'string' && values[name] !== '' ? values[name] : undefined,
    ]),
  );
}

/** `--queue`: `payouts` (the default) or `webhooks`. */
function dlqQueue(options: Record<string, string | undefined>): DeadLetterQueueName {
  const queue = options.queue ?? 'payouts';
  if (!(DEAD_LETTER_QUEUES as readonly string[]).includes(queue))
    throw new CommandRefused(`--queue must be ${DEAD_LETTER_QUEUES.join(' or ')}, not "${queue}"`, 2);
  return queue as DeadLetterQueueName;
}

function dlqFilter(options: Record<string, string | undefined>): DeadLetterFilter {
  return {
    queue: dlqQueue(options),
    reason: options.reason,
    id: options.id,
    limit: options.limit === undefined ? undefined : positiveInt(options.limit, 0),
  };
}

/** A yes/no option: `1` is yes, `0` or nothing is no; anything else is refused rather than guessed. */
function flag(options: Record<string, string | undefined>, name: string): boolean {
  const value = options[name];
  if (value !== undefined && value !== '0' && value !== '1')
    throw new CommandRefused(`--${name} must be 1 or 0, not "${value}"`, 2);
  return value === '1';
}

function printDeadLetters(letters: DeadLetter[]): void {
  for (const letter of letters) process.stdout.write(`${JSON.stringify(deadLetterFields(letter))}\n`);
}

const config = (() => {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
})();
/**
 * A one-shot command's standard output is its answer (keys, dead letters as JSON lines, a report), read by a person or
 * piped to `jq`: its log lines go to standard error. The roles log to standard output.
 */
const logStream = ONE_SHOT.has(process.argv[2] ?? '') ? process.stderr : process.stdout;
const log = createLogger({
  level: config.logLevel,
  name: process.argv[2] ?? 'main',
  destination: logDestination(config.logFormat, logStream) ?? logStream,
});

/**
 * A short-lived pool for one command. knex's own warnings (a connection that cannot be made, with its stack) go to
 * the debug log: the same error reaches the command, which reports it once.
 */
async function withDb<T>(fn: (db: ReturnType<typeof createDb>) => Promise<T>): Promise<T> {
  const db = createDb(config.databaseUrl, 2, {
    warn: (message) => log.debug({ component: 'knex' }, message),
    error: (message) => log.debug({ component: 'knex' }, message),
  });
  try {
    return await fn(db);
  } finally {
    await db.destroy();
  }
}

/** The API keys on a short-lived pool of their own, for the one-shot key commands. */
function withKeys<T>(fn: (keys: ApiKeys) => Promise<T>): Promise<T> {
  return withDb((db) => fn(new ApiKeys(new PgApiKeyStore(db))));
}

/** Runs a long-lived role until a signal, then stops it (its handles in reverse order, then its pool). */
function serve(role: RunningRole): void {
  handleShutdownSignals(() => role.stop(), { log });
}

/**
 * The schema and the runtime role, on the DDL-capable connection (`DATABASE_MIGRATION_URL`), then the broker's
 * topology.
 */
async function migrate(): Promise<void> {
  await ensureDatabase(config.databaseMigrationUrl);
  const db = createDb(config.databaseMigrationUrl, 2);
  try {
    const applied = await migrateLatest(db);
    log.info({ applied }, applied.length ? 'migrations applied' : 'database schema up to date');
    await ensureRuntimeRole(db, { name: config.databaseAppRole, password: config.databaseAppPassword });
    log.info({ role: config.databaseAppRole }, 'runtime role granted');
  } finally {
    await db.destroy();
  }
  await migrateTopology(config, log);
}

/**
 * The garbage collector's settings of a long-running role, set before the role is built (V8 applies them from then
 * on, so this works as the same `node` flags would, however the role is started: image, `make run`, `make bench`).
 *
 * - `--heap-growing-percent=50`: the old generation grows by half of what survived the last full GC before the
 *   next one; V8 would pick up to 4× by itself (it picked 1.8–4× under benchmark load). Under 32 concurrent
 *   requests the API then peaks near 140 MB resident instead of ~200 MB; a worker draining 10,000 payouts
 *   likewise, and the relay, whose resident memory otherwise stepped up by a fifth within a ten-minute soak.
 * - `--no-allocation-site-pretenuring`: V8 otherwise starts allocating an object straight into the old generation
 *   once enough objects made at the same place in the code have survived a young collection. Here nearly
 *   everything lives for one request or one batch, so each such guess put short-lived objects where only a full
 *   GC frees them, and they kept younger objects alive in turn: under create load, a full GC every ~550 ms
 *   instead of every ~1.8 s, and a p99 of 16–17 ms instead of 10–11 ms at the same resident memory
 *   (bench/README.md, "The request state's getter, and pretenuring").
 */
function tuneGarbageCollection(): void {
  setFlagsFromString('--heap-growing-percent=50');
  setFlagsFromString('--no-allocation-site-pretenuring');
}

const commands: Record<string, Command> = {
  migrate,

  async api() {
    tuneGarbageCollection();
    serve(await runApi(config, log));
  },

  async worker() {
    tuneGarbageCollection();
    serve(await runWorker(config, log));
  },

  async relay() {
    tuneGarbageCollection();
    serve(await runRelay(config, log));
  },

  async sweeper() {
    tuneGarbageCollection();
    serve(await runSweeper(config, log));
  },

  async webhooks() {
    tuneGarbageCollection();
    serve(await runWebhooks(config, log));
  },

  /** Everything on one laptop: migrate, then api + relay + worker + sweeper + webhooks in one process, and a key. */
  async dev() {
    await migrate();
    const dev = await runDev(config, log);
    serve(dev);
    log.info(
      { url: `http://${config.host}:${dev.port}`, docs: `http://${config.host}:${dev.port}/api/docs/` },
      'dev ready',
    );
    // Each run's key replaces the keys of earlier runs.
    const issued = await dev.keys.reissue('dev', 'client');
    process.stdout.write(
      `\nDevelopment API key (client "dev"), valid until revoked:\nexport KEY=${issued.key}\n\n`,
    );
  },

  /** One JSON line per dead letter, under the field names of the logs (`message_id`, `payout_id`, `reason`, …). */
  /** `dlq-list [--limit N] [--queue payouts|webhooks]` (a bare first argument is the limit, as before). */
  async 'dlq-list'(args) {
    const positional = args[0] !== undefined && !args[0].startsWith('--') ? args.shift() : undefined;
    const options = dlqOptions('dlq-list', args, [], ['limit', 'queue']);
    const letters = await dlqList(config, positiveInt(options.limit ?? positional, 100), dlqQueue(options));
    printDeadLetters(letters);
    process.stderr.write(`${letters.length} dead letter(s) listed; all are still in the queue\n`);
  },

  /**
   * `dlq-replay [--reason R] [--id ID] [--limit N] [--dry-run 1] [--force 1]`: with `--dry-run`, the dead letters
   * it would replay, one JSON line each; then the counts as one JSON line.
   */
  async 'dlq-replay'(args) {
    const options = dlqOptions('dlq-replay', args, ['force']);
    const dryRun = flag(options, 'dry-run');
    const report = await dlqReplay(config, log, {
      ...dlqFilter(options),
      dryRun,
      force: flag(options, 'force'),
    });
    if (dryRun) printDeadLetters(report.letters);
    const { replayed, refused, failed } = report;
    process.stdout.write(`${JSON.stringify({ replayed, refused, failed, dry_run: dryRun })}\n`);
    if (refused > 0) {
      process.stderr.write(
        `${refused} dead letter(s) not replayed and still in the queue: their reason never succeeds (FORCE=1 replays them)\n`,
      );
    }
    if (failed > 0) process.exitCode = 1;
  },

  /**
   * `dlq-drop [--reason R] [--id ID] [--limit N] [--dry-run 1] [--confirm N]`: prints the matching dead letters
   * and their count, and drops them only when `--confirm` is that count. No confirmation, or another number, drops
   * nothing and exits 1, as does a filter that matches nothing.
   */
  async 'dlq-drop'(args) {
    const options = dlqOptions('dlq-drop', args, ['confirm']);
    const dryRun = flag(options, 'dry-run');
    const confirm = options.confirm === undefined ? undefined : positiveInt(options.confirm, 0);
    const report = await dlqDrop(config, log, { ...dlqFilter(options), dryRun, confirm });
    const count = report.matched.length;
    printDeadLetters(report.matched);
    if (count === 0) throw new CommandRefused('no dead letter matches; nothing dropped', 1);
    if (report.dropped > 0) {
      process.stderr.write(`${report.dropped} dead letter(s) dropped\n`);
    } else if (dryRun) {
      process.stderr.write(`${count} dead letter(s) would be dropped; nothing dropped (dry run)\n`);
    } else if (confirm === undefined) {
      throw new CommandRefused(
        `${count} dead letter(s) match; nothing dropped: run again with CONFIRM=${count} to drop them`,
        1,
      );
    } else {
      throw new CommandRefused(`${count} dead letter(s) match, not ${confirm}; nothing dropped`, 1);
    }
  },

  async key([name, role = 'client', expires]) {
    if (!name) throw usage('key <client-name> [client|operator] [expires-in-days]');
    const expiresInDays = expires === undefined || expires === '' ? undefined : positiveInt(expires, 0);
    const issued = await withKeys((keys) => keys.issue(name, role, { expiresInDays }));
    process.stderr.write(
      `API key for ${name} (${role}), id ${issued.keyId}${
        expiresInDays === undefined ? '' : `, expires in ${expiresInDays} day(s)`
      }; shown once, store it now:\n`,
    );
    process.stdout.write(`${issued.key}\n`);
  },

  /** `key-revoke <client-name>`: every key of the client; `key-revoke --key-id <id>`: that key alone. */
  async 'key-revoke'([first, second]) {
    if (first === '--key-id') {
      if (!second) throw usage('key-revoke --key-id <key-id>');
      const revoked = await withKeys((keys) => keys.revokeKey(second));
      if (!revoked) throw new CommandRefused(`no active key ${second}`, 1);
      process.stdout.write(`revoked key ${second}\n`);
      return;
    }
    if (!first) throw usage('key-revoke <client-name> | key-revoke --key-id <key-id>');
    const count = await withKeys((keys) => keys.revoke(first));
    // Nothing revoked is worth a non-zero exit: a misspelt name would otherwise look like a revoked client.
    if (count === 0) throw new CommandRefused(`no active keys for ${first}`, 1);
    process.stdout.write(`revoked ${count} key(s) of ${first}\n`);
  },

  /**
   * One line per key, tab-separated: id, the key's first characters, client, role, created, last used, expiry,
   * revoked (`-` for none). Never the key.
   */
  async 'key-list'([name]) {
    const keys: ApiKeyListing[] = await withKeys((store) => store.list(name || undefined));
    const at = (date: Date | null) => (date ? date.toISOString() : '-');
    for (const key of keys) {
      process.stdout.write(
        `${[key.keyId, key.prefix, key.client, key.role, at(key.createdAt), at(key.lastUsedAt), at(key.expiresAt), at(key.revokedAt)].join('\t')}\n`,
      );
    }
  },
};

const [role, ...args] = process.argv.slice(2);
const command = role === undefined ? undefined : commands[role];
if (!command) {
  process.stderr.write(`usage: main <${Object.keys(commands).join('|')}> [args]\n`);
  process.exit(2);
}
command(args).catch((error: unknown) => {
  // Exit now, whatever happened: an open broker or database connection would keep a role that failed to start
  // alive but useless, and its orchestrator would never restart it.
  const refusal = refusalOf(error);
  if (refusal) {
    process.stderr.write(`${refusal.message}\n`);
    process.exit(refusal.exitCode);
  }
  if (role === 'dev' && error instanceof BrokerUnreachable) {
    log.debug({ err: error }, 'dev failed');
    process.stderr.write(`dev failed: ${error.message}\n`);
    process.exit(1);
  }
  if (role === 'dev' && isDatabaseUnavailable(error)) {
    // `make dev` migrates first: without PostgreSQL there is nothing to run, and a stack would say no more.
    log.debug({ err: error }, 'dev failed');
    const said = error instanceof Error ? error.message.split('\n')[0] : String(error);
    process.stderr.write(
      `dev failed: PostgreSQL is unavailable (${unavailabilityCause(error)}: ${said}); check that it runs, DATABASE_URL and DATABASE_MIGRATION_URL\n`,
    );
    process.exit(1);
  }
  if (role !== undefined && ONE_SHOT.has(role)) {
    log.debug({ err: error }, `${role} failed`);
    const said = error instanceof Error ? error.message : String(error);
    process.stderr.write(`${role} failed: ${said.replace(/\s*\n\s*/g, ' ')}\n`);
    process.exit(1);
  }
  log.fatal({ err: error }, `${role} failed`);
  process.exit(1);
});
