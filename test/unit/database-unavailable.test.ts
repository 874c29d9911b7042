/**
 * The database away in every way it can be — missing, refusing the login, unreachable, too slow, silent — is a 503
 * with `Retry-After` for the API and a wait for the worker, and the readiness check names which it is; the limits
 * that make "too slow" and "silent" errors at all are configured, validated and on every connection.
 */
import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../src/config.js';
import { classifyError } from '../../src/consumers/retry-policy.js';
import { isDatabaseUnavailable, unavailabilityCause } from '../../src/database-errors.js';
import { StoreUnavailable } from '../../src/domain/errors.js';
import { toProblem } from '../../src/http/problem.js';
import { SILENT_SOCKET_MARGIN_MS, connectionSettings } from '../../src/persistence/db.js';
import { translated } from '../../src/persistence/payout-store.js';

function withCode(message: string, code?: string, name?: string): Error {
  const error = new Error(message) as Error & { code?: string };
  if (code !== undefined) error.code = code;
  if (name !== undefined) error.name = name;
  return error;
}

async function problemOf(error: Error) {
  const thrown = await translated(() => Promise.reject(error)).catch((caught: unknown) => caught);
  return toProblem(thrown, 'body');
}

describe('database unavailable: missing, refused, unreachable, too slow, silent', () => {
  const cases: Array<[Error, string, 'wait' | 'spends a try']> = [
    [withCode('database "payouts" does not exist', '3D000'), 'missing database', 'wait'],
    [withCode('password authentication failed for user "payouts_app"', '28P01'), 'login refused', 'wait'],
    [withCode('role "payouts_app" does not exist', '28000'), 'login refused', 'wait'],
    [
      withCode('canceling statement due to statement timeout', '57014'),
      'statement timed out',
      'spends a try',
    ],
    [
      withCode('terminating connection due to idle-in-transaction timeout', '25P03'),
      'session ended for idling',
      'wait',
    ],
    [withCode('canceling statement due to lock timeout', '55P03'), 'lock wait timed out', 'spends a try'],
    [withCode('select 1 - Query read timeout'), 'no answer in time', 'wait'],
    [withCode('Query read timeout'), 'no answer in time', 'wait'],
    [withCode('timeout expired'), 'unreachable', 'wait'],
    [withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'), 'unreachable', 'wait'],
  ];

  for (const [error, cause, worker] of cases) {
    it(`"${error.message}": 503 with Retry-After, "${cause}", the worker ${worker === 'wait' ? 'waits' : 'spends a try'}`, async () => {
      expect(isDatabaseUnavailable(error)).to.equal(true);
      const problem = await problemOf(error);
      expect(problem.status).to.equal(503);
      expect(problem.code).to.equal('service_unavailable');
      expect(problem.headers['Retry-After']).to.equal(String(StoreUnavailable.RETRY_AFTER_SECONDS));
      expect(unavailabilityCause(error)).to.equal(cause);
      // The store's error names the same cause through its `cause`.
      expect(unavailabilityCause(new StoreUnavailable(error))).to.equal(cause);
      const verdict = classifyError(new StoreUnavailable(error));
      expect(verdict.transient).to.equal(true);
      if (verdict.transient) expect(verdict.rule.spendsAttempt).to.equal(worker === 'spends a try');
    });
  }

  it('a statement that merely mentions a timeout in its text is not one', () => {
    expect(isDatabaseUnavailable(withCode('Query read timeout - something else'))).to.equal(false);
  });
});

describe('database limits: configured, validated, on every connection', () => {
  it('defaults: statement 10 s, lock 5 s, idle in transaction 30 s, a request 30 s', () => {
    const config = loadConfig({});
    expect(config).to.include({
      databaseStatementTimeoutMs: 10_000,
      databaseLockTimeoutMs: 5_000,
      databaseIdleInTransactionTimeoutMs: 30_000,
      requestTimeoutMs: 30_000,
    });
  });

  const refused: Array<[Record<string, string>, string]> = [
    [{ DATABASE_STATEMENT_TIMEOUT_MS: '0' }, 'DATABASE_STATEMENT_TIMEOUT_MS'],
    [{ DATABASE_STATEMENT_TIMEOUT_MS: '10s' }, 'DATABASE_STATEMENT_TIMEOUT_MS'],
    [{ DATABASE_LOCK_TIMEOUT_MS: '20000' }, 'DATABASE_LOCK_TIMEOUT_MS'],
    [{ DATABASE_LOCK_TIMEOUT_MS: '50' }, 'DATABASE_LOCK_TIMEOUT_MS'],
    [{ DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: '999' }, 'DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS'],
    [{ REQUEST_TIMEOUT_MS: '0' }, 'REQUEST_TIMEOUT_MS'],
  ];
  for (const [env, key] of refused) {
    it(`refuses ${JSON.stringify(env)}, naming ${key}`, () => {
      expect(() => loadConfig(env))
        .to.throw(ConfigError)
        .with.property('message')
        .that.includes(key);
    });
  }

  it("a running role's connections: the limits, a client-side bound past the server's, keepalive, a connect timeout", () => {
    const settings = connectionSettings('postgres://u@h/db', {
      statementTimeoutMs: 10_000,
      lockTimeoutMs: 5_000,
      idleInTransactionTimeoutMs: 30_000,
    });
    expect(settings).to.include({
      statement_timeout: 10_000,
      lock_timeout: 5_000,
      idle_in_transaction_session_timeout: 30_000,
      query_timeout: 10_000 + SILENT_SOCKET_MARGIN_MS,
      keepAlive: true,
    });
    expect(settings.keepAliveInitialDelayMillis).to.be.within(1_000, 30_000);
    expect(settings.connectionTimeoutMillis).to.be.within(1_000, 30_000);
  });

  it("migrate's and the one-shot commands' connections: keepalive and a connect timeout, statements unlimited", () => {
    const settings = connectionSettings('postgres://u@h/db');
    expect(settings.keepAlive).to.equal(true);
    expect(settings).to.not.have.any.keys(
      'statement_timeout',
      'lock_timeout',
      'idle_in_transaction_session_timeout',
      'query_timeout',
    );
  });
});
