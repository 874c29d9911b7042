/**
 * `make shell`: a Node REPL with the app built once, as a role would build it, for poking at data by hand.
 *
 *   config, db, service, store, keys, log, metrics   built as a role builds them (src/roles/parts.ts)
 *   money, currency, errors, recipient, principal, payout, apiKeys, text, machine, definition
 *   payouts, outbox, idempotency, clients, models                          the persistence modules
 *
 * For example (top-level await works):
 *   > await db('payouts').count()
 *   > const op = { clientId: (await db('clients').first()).id, role: 'operator', actor: 'shell' }
 *   > await service.listPayouts(op, { limit: 5 })
 *   > new lifecycle.PayoutLifecycle().initial()
 *
 * The database pool is closed when the REPL exits (.exit or Ctrl-D).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import repl from 'node:repl';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createMetrics } from '../src/metrics.js';
import { openDatabase, payoutParts } from '../src/roles/parts.js';
import * as apiKeys from '../src/domain/api-keys.js';
import * as currency from '../src/domain/currency.js';
import * as errors from '../src/domain/errors.js';
import * as money from '../src/domain/money.js';
import * as payout from '../src/domain/payout.js';
import * as principal from '../src/domain/principal.js';
import * as recipient from '../src/domain/recipient.js';
import * as text from '../src/domain/text.js';
import * as definition from '../src/machines/definition.js';
import * as machine from '../src/machines/payout.machine.js';
import * as lifecycle from '../src/machines/payout-lifecycle.js';
import * as clients from '../src/persistence/client-repository.js';
import * as idempotency from '../src/persistence/idempotency-repository.js';
import * as models from '../src/persistence/models.js';
import * as outbox from '../src/persistence/outbox-repository.js';
import * as payouts from '../src/persistence/payout-repository.js';

const config = loadConfig();
// Two connections are plenty for one person typing; the pool of a role would hold DATABASE_POOL_MAX.
const log = createLogger({ level: config.logLevel, name: 'shell' });
const db = openDatabase(config, log, 2);
const metrics = createMetrics({ defaults: false });
const { store, service } = payoutParts(config, db, metrics, log);
const loaded = {
  config,
  db,
  service,
  store,
  keys: new apiKeys.ApiKeys(new clients.PgApiKeyStore(db)),
  log,
  metrics,
  money,
  Money: money.Money,
  currency,
  errors,
  recipient,
  principal,
  payout,
  apiKeys,
  text,
  machine,
  lifecycle,
  definition,
  payouts,
  outbox,
  idempotency,
  clients,
  models,
};

const database = new URL(config.databaseUrl);
database.password = '';
process.stdout.write(
  `payouts shell: ${database.host}${database.pathname}, loaded: ${Object.keys(loaded).join(', ')}\n` +
    'Top-level await works, e.g. `await db("payouts").count()`. Exit with .exit or Ctrl-D.\n',
);

const server = repl.start({ prompt: 'payouts> ', useGlobal: false, breakEvalOnSigint: true });
Object.assign(server.context, loaded);
server.setupHistory(
  process.env.PAYOUTS_SHELL_HISTORY ?? join(homedir(), '.payouts_shell_history'),
  (error) => {
    if (error) process.stderr.write(`no REPL history: ${error.message}\n`);
  },
);
server.on('exit', () => {
  db.destroy().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`closing the database pool failed: ${(error as Error).message}\n`);
      process.exit(1);
    },
  );
});
