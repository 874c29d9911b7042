/**
 * The operations endpoints of the worker, relay and sweeper roles, on `METRICS_PORT`: `/metrics` (this
 * instance's registry), `/healthz` (the process is alive) and `/readyz` (every dependency answers; otherwise 503
 * application/problem+json naming what is down). Plain node:http: these roles have no other HTTP surface.
 */
import { unavailabilityCause } from './database-errors.js';
import { PROBLEM_CONTENT_TYPE, problemDocument } from './problem-document.js';
import { withTimeout } from './timeout.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

/**
 * A dependency check: true when the dependency is usable. It may throw or hang; both count as down, and what it
 * threw says why (`unavailabilityCause`: a missing database, a refused login, unreachable, no answer in time).
 */
export type ReadinessCheck = () => Promise<boolean> | boolean;

/** A check that did not answer within its time: the dependency is down (or so slow that it might as well be). */
export class CheckTimedOut extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
    this.name = 'CheckTimedOut';
  }
}

/** A check's outcome: up, or down with why when the check said (by what it threw). */
interface CheckResult {
  up: boolean;
  cause?: string;
}

function causeOf(error: unknown): string {
  return error instanceof CheckTimedOut ? error.message : unavailabilityCause(error);
}

export interface OpsServerOptions {
  port: number;
  host: string;
  registry: Registry;
  /** Named checks, e.g. `{ database, broker }`; all must pass for /readyz to answer 200. */
  checks: Record<string, ReadinessCheck>;
  /** Each check must answer within this many milliseconds. */
  checkTimeoutMs?: number;
  /**
   * Where a check's change is said: once at warn when it starts failing (or fails for another cause), once at info
   * when it passes again — never a line per probe.
   */
  log?: Pick<Logger, 'warn' | 'info'>;
}

export interface OpsServer {
  /** The bound port (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const timeoutMs = options.checkTimeoutMs ?? 2_000;
  const said = new Map<string, CheckResult>();
  /** Logs the checks whose outcome changed since the last probe. */
  const report = (results: Record<string, CheckResult>) => {
    for (const [name, result] of Object.entries(results)) {
      const before = said.get(name);
      said.set(name, result);
      if (!result.up && (before === undefined || before.up || before.cause !== result.cause)) {
        options.log?.warn(
          { check: name, cause: result.cause },
          `not ready: ${name} is down${result.cause ? ` (${result.cause})` : ''}`,
        );
      } else if (result.up && before !== undefined && !before.up) {
        options.log?.info({ check: name }, `ready again: ${name} is up`);
      }
    }
  };
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string) => {
      response.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    const problem = (
      status: number,
      code: string,
      title: string,
      detail: string,
      extensions: Record<string, unknown> = {},
    ) =>
      send(
        status,
        PROBLEM_CONTENT_TYPE,
        JSON.stringify(problemDocument({ code, title, status, detail, extensions })),
      );

    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('Allow', 'GET, HEAD');
      return problem(
        405,
        'method_not_allowed',
        'Method not allowed',
        `${request.method} is not allowed here; allowed: GET, HEAD.`,
      );
    }
    if (path === '/healthz') return send(200, 'application/json', JSON.stringify({ status: 'ok' }));
    if (path === '/readyz') {
      void runChecks(options.checks, timeoutMs).then((results) => {
        report(results);
        const down = Object.entries(results).filter(([, result]) => !result.up);
        const checks = Object.fromEntries(
          Object.entries(results).map(([name, result]) => [name, result.up ? 'up' : 'down']),
        );
        if (down.length === 0)
          return send(200, 'application/json', JSON.stringify({ status: 'ready', checks }));
        const named = down.map(([name, { cause }]) => (cause ? `${name} (${cause})` : name));
        const causes = Object.fromEntries(
          down.flatMap(([name, { cause }]) => (cause ? [[name, cause] as const] : [])),
        );
        return problem(503, 'not_ready', 'Not ready', `Unavailable: ${named.join(', ')}.`, {
          checks,
          ...(Object.keys(causes).length > 0 && { causes }),
        });
      });
      return;
    }
    if (path === '/metrics') {
      void options.registry.metrics().then(
        (body) => send(200, options.registry.contentType, body),
        () => problem(500, 'internal_error', 'Internal server error', 'Metrics could not be collected.'),
      );
      return;
    }
    return problem(404, 'route_not_found', 'Not found', `No route ${path}.`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function runChecks(
  checks: Record<string, ReadinessCheck>,
  timeoutMs: number,
): Promise<Record<string, CheckResult>> {
  const entries = await Promise.all(
    Object.entries(checks).map(([name, check]) =>
      withTimeout(Promise.resolve().then(check), timeoutMs, () => new CheckTimedOut(timeoutMs)).then(
        (up): readonly [string, CheckResult] => [name, { up }],
        (error: unknown): readonly [string, CheckResult] => [name, { up: false, cause: causeOf(error) }],
      ),
    ),
  );
  return Object.fromEntries(entries);
}

export interface RoleHandle {
  /** Stops taking work, finishes or releases what is in flight, closes the role's own connections (not `ctx.db`). */
  stop(): Promise<void>;
  /** The port of the role's /metrics, /healthz, /readyz server, when it started one. */
  readonly opsPort: number | undefined;
}

export interface RoleOptions {
  /**
   * Serve /metrics, /healthz and /readyz on `METRICS_PORT` (default true). The all-in-one `dev` role turns it off
   * for all but one role, or serves them from the API.
   */
  opsServer?: boolean;
}

/** What every long-running role has: its configuration, logger and registry, and whether its database answers. */
export interface RoleDeps {
  config: Config;
  log: Logger;
  metrics: Metrics;
  /** Resolves when the role's database answers. */
  ready: () => Promise<void>;
}

/**
 * Serves the role's /metrics, /healthz and /readyz on `METRICS_PORT`, unless `options.opsServer` is false. Ready
 * means the database answers and `brokerReady` holds.
 */
export async function startRoleOpsServer(
  deps: RoleDeps,
  options: RoleOptions,
  brokerReady: ReadinessCheck,
): Promise<OpsServer | undefined> {
  if (options.opsServer === false) return undefined;
  return startOpsServer({
    port: deps.config.metricsPort,
    host: deps.config.host,
    registry: deps.metrics.registry,
    checks: { database: () => deps.ready().then(() => true), broker: brokerReady },
    log: deps.log.child({ component: 'readiness' }),
  });
}

/**
 * The API's operations port (`METRICS_PORT`): `/metrics`, `/healthz` and `/readyz`, never on the public port.
 * Ready means the database answers; the broker is not asked, since payouts go through the outbox.
 */
export function startApiOpsServer(
  deps: Omit<RoleDeps, 'log'> & { log?: Logger | undefined },
): Promise<OpsServer> {
  return startOpsServer({
    port: deps.config.metricsPort,
    host: deps.config.host,
    registry: deps.metrics.registry,
    checks: { database: () => deps.ready().then(() => true) },
    log: deps.log?.child({ component: 'readiness' }),
  });
}
