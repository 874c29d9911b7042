/**
 * The one program. `node dist/src/main.js <role>` (or `tsx src/main.ts <role>`) where role is one of the
 * commands below. Configuration comes from the environment (src/config.ts).
 */
import { ConfigError, loadConfig } from './config.js';
import { issueApiKey, listApiKeys, revokeApiKeys } from './domain/api-keys.js';
import { createDb, ensureDatabase, migrateLatest } from './persistence/db.js';
import { createLogger } from './logger.js';

type Command = (args: string[]) => Promise<void>;

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
const log = createLogger({ level: config.logLevel, name: process.argv[2] ?? 'main' });

async function withDb<T>(fn: (db: ReturnType<typeof createDb>) => Promise<T>): Promise<T> {
  const db = createDb(config.databaseUrl, 2);
  try {
    return await fn(db);
  } finally {
    await db.destroy();
  }
}

const commands: Record<string, Command> = {
  async migrate() {
    await ensureDatabase(config.databaseUrl);
    const applied = await withDb(migrateLatest);
    log.info({ applied }, applied.length ? 'migrations applied' : 'database schema up to date');
  },

  async key([name, role = 'client']) {
    if (!name) throw new Error('usage: key <client-name> [client|operator]');
    const issued = await withDb((db) => issueApiKey(db, name, role as 'client' | 'operator'));
    process.stderr.write(`API key for ${name} (${role}); shown once, store it now:\n`);
    process.stdout.write(`${issued.key}\n`);
  },

  async 'key-revoke'([name]) {
    if (!name) throw new Error('usage: key-revoke <client-name>');
    const count = await withDb((db) => revokeApiKeys(db, name));
    process.stdout.write(`revoked ${count} key(s) of ${name}\n`);
  },

  async 'key-list'() {
    const keys = await withDb(listApiKeys);
    for (const key of keys) {
      process.stdout.write(
        `${key.client}\t${key.role}\t${key.prefix}…\tcreated ${key.createdAt.toISOString()}\t${
          key.revokedAt ? `revoked ${key.revokedAt.toISOString()}` : 'active'
        }\n`,
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
  log.fatal({ err: error }, `${role} failed`);
  process.exitCode = 1;
});
