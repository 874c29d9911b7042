/**
 * The operations endpoints of the worker, relay and sweeper roles, on `METRICS_PORT`: `/metrics` (this
 * instance's registry), `/healthz` (the process is alive) and `/readyz` (every dependency answers; otherwise 503
 * application/problem+json naming what is down). Plain node:http: these roles have no other HTTP surface.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** A dependency check: true when the dependency is usable. It may throw or hang; both count as down. */
export type ReadinessCheck = () => Promise<boolean> | boolean;

export interface OpsServerOptions {
  port: number;
  host: string;
  registry: Registry;
  /** Named checks, e.g. `{ database, broker }`; all must pass for /readyz to answer 200. */
  checks: Record<string, ReadinessCheck>;
  /** Each check must answer within this many milliseconds. */
  checkTimeoutMs?: number;
}

export interface OpsServer {
  /** The bound port (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const timeoutMs = options.checkTimeoutMs ?? 2_000;
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string) => {
      response.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    const problem = (status: number, title: string, detail: string, extra: Record<string, unknown> = {}) =>
      send(
        status,
        'application/problem+json',
        JSON.stringify({ type: 'about:blank', title, status, detail, ...extra }),
      );

    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('Allow', 'GET, HEAD');
      return problem(405, 'Method not allowed', `${request.method} is not allowed here; allowed: GET, HEAD.`);
    }
    if (path === '/healthz') return send(200, 'application/json', JSON.stringify({ status: 'ok' }));
    if (path === '/readyz') {
      void runChecks(options.checks, timeoutMs).then((results) => {
        const down = Object.entries(results)
          .filter(([, up]) => !up)
          .map(([name]) => name);
        const checks = Object.fromEntries(
          Object.entries(results).map(([name, up]) => [name, up ? 'up' : 'down']),
        );
        if (down.length === 0)
          return send(200, 'application/json', JSON.stringify({ status: 'ready', checks }));
        return problem(503, 'Not ready', `Unavailable: ${down.join(', ')}.`, { checks });
      });
      return;
    }
    if (path === '/metrics') {
      void options.registry.metrics().then(
        (body) => send(200, options.registry.contentType, body),
        () => problem(500, 'Internal server error', 'Metrics could not be collected.'),
      );
      return;
    }
    return problem(404, 'Not found', `No route ${path}.`);
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
): Promise<Record<string, boolean>> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        const up = await Promise.race([
          Promise.resolve().then(check),
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(false), timeoutMs);
          }),
        ]);
        return [name, up] as const;
      } catch {
        return [name, false] as const;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return Object.fromEntries(entries);
}
