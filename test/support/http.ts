/**
 * The API as a black box for tests: a real app on a free port, requests over HTTP, and every response checked
 * against openapi.yaml — its status documented for that operation, its required headers present and valid,
 * its content type and body matching the documented schema, every error a problem document. A response that
 * breaks the contract fails the test that received it.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { loadConfig } from '../../src/config.js';
import type { TestContext as AppContext, TestContextOverrides as ContextOverrides } from './context.js';
import { createTestContext as createContext } from './context.js';
import type { OutboxWaker } from '../../src/domain/scheduling.js';
import type { AppOptions } from '../../src/http/app.js';
import { createApp } from '../../src/http/app.js';
import { createApiServer } from '../../src/http/server.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { operatorConsoleOf } from '../../src/roles/parts.js';
import type { Db } from '../../src/persistence/db.js';
import type { ApiResponse } from './contract.js';
import { contract, isJson } from './contract.js';
import { testDatabaseUrl } from './database.js';

export type { ApiResponse } from './contract.js';
export { ContractValidator, contract } from './contract.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- response bodies are JSON checked against the contract */

export interface RequestOptions {
  /** Sent as `Authorization: Bearer <key>`. */
  key?: string;
  headers?: Record<string, string>;
  /** Serialised as JSON with `Content-Type: application/json`. */
  json?: unknown;
  /** Sent as it is; set the content type yourself. */
  body?: string | Buffer;
}

/** A waker that does nothing: these tests look at the outbox rows, not at relays. */
const quietWaker: OutboxWaker = { wake() {} };

export interface TestApi {
  ctx: AppContext;
  baseUrl: string;
  port: number;
  /** A request whose response must satisfy the contract. */
  request<T = any>(method: string, path: string, options?: RequestOptions): Promise<ApiResponse<T>>;
  /** A request whose response is returned as it is (documentation assets, which are not API responses). */
  raw(method: string, path: string, options?: RequestOptions): Promise<ApiResponse<string>>;
  close(): Promise<void>;
}

/** `env`: settings of the API's configuration, by their variables (e.g. `{ MAX_DESCRIPTION_CHANGES: '3' }`). */
export async function startTestApi(
  db: Db,
  overrides: Omit<ContextOverrides, 'db'> = {},
  env: Record<string, string> = {},
  appOptions: AppOptions = {},
): Promise<TestApi> {
  const config = loadConfig({
    DATABASE_URL: testDatabaseUrl(),
    LOG_LEVEL: 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
    ...env,
  });
  const ctx = createContext(config, {
    db,
    log: createLogger({ level: 'silent' }),
    metrics: createMetrics({ defaults: false }),
    waker: quietWaker,
    ...overrides,
  });
  // The operator console as the API role mounts it (src/roles/roles.ts), on the same service, keys and pool.
  const operatorPages = operatorConsoleOf(config, ctx.db, ctx.log, ctx);
  const server: Server = createApiServer(await createApp({ ...ctx, console: operatorPages }, appOptions));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const baseUrl = `http://127.0.0.1:${port}`;

  async function send(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.key !== undefined) headers.authorization = `Bearer ${options.key}`;
    let body: string | Buffer | undefined = options.body;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${baseUrl}${path}`, { method, headers, body, redirect: 'manual' });
    const text = await response.text();
    const mediaType = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
    return {
      status: response.status,
      headers: response.headers,
      text,
      body: isJson(mediaType) && text !== '' ? JSON.parse(text) : text,
    };
  }

  return {
    ctx,
    baseUrl,
    port,
    async request(method, path, options) {
      const response = await send(method, path, options);
      contract().check(method, path, response);
      return response;
    },
    raw: send,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/**
 * Sends bytes as they are over a socket (what fetch refuses to send: control characters in headers, raw
 * non-ASCII in the path) and parses the one response. The connection is closed by the server or after it.
 */
export function rawHttp(
  port: number,
  request: Buffer,
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error('raw request timed out')));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) {
        reject(new Error(`no HTTP response: ${JSON.stringify(text.slice(0, 200))}`));
        return;
      }
      const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({
        status: Number(statusLine.split(' ')[1]),
        headers,
        body: Buffer.from(text.slice(end + 4), 'latin1').toString('utf8'),
      });
    });
    socket.write(request);
  });
}
