/**
 * The API as a black box for tests: a real app on a free port, requests over HTTP, and every response checked
 * against openapi.yaml — its status documented for that operation, its required headers present and valid,
 * its content type and body matching the documented schema, every error a problem document. A response that
 * breaks the contract fails the test that received it.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import ajvFormats from 'ajv-formats';
import { expect } from 'chai';
import YAML from 'yaml';
import { loadConfig } from '../../src/config.js';
import type { AppContext, ContextOverrides } from '../../src/context.js';
import { createContext } from '../../src/context.js';
import type { OutboxWaker } from '../../src/domain/scheduling.js';
import { createApp } from '../../src/http/app.js';
import { createApiServer } from '../../src/http/server.js';
import { RouteTable, locateSpec } from '../../src/http/spec.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import type { Db } from '../../src/persistence/db.js';
import { testDatabaseUrl } from './database.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- response bodies are JSON checked against the contract */

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  /** Parsed JSON when the response is JSON, the text otherwise. */
  body: T;
  text: string;
}

export interface RequestOptions {
  /** Sent as `Authorization: Bearer <key>`. */
  key?: string;
  headers?: Record<string, string>;
  /** Serialised as JSON with `Content-Type: application/json`. */
  json?: unknown;
  /** Sent as it is; set the content type yourself. */
  body?: string | Buffer;
}

type JsonObject = Record<string, any>;

const PROBLEM = 'application/problem+json';
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Errors that happen before routing (content type, size, malformed JSON) and so on any path. */
const PRE_ROUTING_STATUSES = [400, 413, 415];

/** Validates responses against openapi.yaml with ajv over the spec's own schemas. */
export class ContractValidator {
  readonly document: JsonObject;
  private readonly ajv: Ajv;
  private readonly routes: RouteTable;
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(path = locateSpec()) {
    this.document = YAML.parse(readFileSync(path, 'utf8')) as JsonObject;
    this.ajv = new Ajv({ strict: false, allErrors: true, discriminator: true });
    ajvFormats.default(this.ajv);
    this.ajv.addSchema(this.document, 'openapi');
    this.routes = new RouteTable(this.document as never);
  }

  /** Throws (failing the test) when the response to `method path` breaks the contract. */
  check(method: string, url: string, response: ApiResponse): void {
    const where = `${method} ${url} → ${response.status}`;
    const path = new URL(url, 'http://localhost').pathname;
    expect(response.headers.get('x-request-id'), `${where}: X-Request-Id`).to.match(REQUEST_ID);
    expect(
      response.status,
      `${where}: a 500 is never acceptable (${response.text.slice(0, 300)})`,
    ).to.not.equal(500);
    if (response.status >= 400) this.checkProblem(where, response);

    const route = this.routes.match(path);
    if (!route) {
      expect(
        [404, ...PRE_ROUTING_STATUSES],
        `${where}: outside the contract only 404 and pre-routing errors`,
      ).to.include(response.status);
      return;
    }
    const operation = (this.document.paths[route.template] as JsonObject)[
      method === 'HEAD' ? 'get' : method.toLowerCase()
    ] as JsonObject | undefined;
    if (!operation) {
      expect([405, ...PRE_ROUTING_STATUSES], `${where}: no operation, so 405`).to.include(response.status);
      if (response.status === 405)
        expect(response.headers.get('allow'), `${where}: Allow`).to.be.a('string').and.not.equal('');
      return;
    }
    const responses = operation.responses as JsonObject;
    const pointerBase = `#/paths/${escape(route.template)}/${method === 'HEAD' ? 'get' : method.toLowerCase()}/responses`;
    expect(Object.keys(responses), `${where}: status not documented for ${operation.operationId}`).to.include(
      String(response.status),
    );
    const documented = this.resolve(responses[String(response.status)], `${pointerBase}/${response.status}`);

    for (const [name, raw] of Object.entries((documented.value.headers ?? {}) as JsonObject)) {
      const header = this.resolve(raw, '').value;
      const value = response.headers.get(name);
      if (header.required) expect(value, `${where}: header ${name} is required`).to.be.a('string');
      if (value !== null && header.schema) {
        const validate = this.ajv.compile(header.schema as object);
        expect(
          validate(value),
          `${where}: header ${name}: ${value} ${this.ajv.errorsText(validate.errors)}`,
        ).to.equal(true);
      }
    }

    const content = documented.value.content as JsonObject | undefined;
    const mediaType = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
    if (!content) {
      expect(response.text, `${where}: no body documented`).to.equal('');
      return;
    }
    expect(Object.keys(content), `${where}: content type`).to.include(mediaType);
    if (method === 'HEAD' || !isJson(mediaType) || !content[mediaType].schema) return;
    this.validate(`${documented.pointer}/content/${escape(mediaType)}/schema`, response.body, where);
  }

  /** Every error: problem+json, valid against the Problem schema, its `status` the HTTP status. */
  checkProblem(where: string, response: ApiResponse): void {
    const mediaType = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
    expect(mediaType, `${where}: every error is problem+json`).to.equal(PROBLEM);
    if (where.startsWith('HEAD ')) return;
    this.validate('#/components/schemas/Problem', response.body, where);
    expect((response.body as JsonObject).status, `${where}: problem status`).to.equal(response.status);
  }

  private validate(pointer: string, body: unknown, where: string): void {
    const validate = this.compiled.get(pointer) ?? this.ajv.compile({ $ref: `openapi${pointer}` });
    this.compiled.set(pointer, validate);
    if (!validate(body)) {
      expect.fail(
        `${where}: body breaks the contract at ${pointer}: ${this.ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 500)}`,
      );
    }
  }

  /** Follows `$ref`s outside schemas (responses, headers), keeping the pointer of the object reached. */
  private resolve(value: JsonObject, pointer: string): { value: JsonObject; pointer: string } {
    let current = { value, pointer };
    while (typeof current.value.$ref === 'string') {
      const ref = current.value.$ref;
      const target = ref
        .slice(2)
        .split('/')
        .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
        .reduce<unknown>((node, part) => (node as JsonObject | undefined)?.[part], this.document);
      expect(target, `unresolvable ${ref}`).to.be.an('object');
      current = { value: target as JsonObject, pointer: ref };
    }
    return current;
  }
}

function escape(segment: string): string {
  return encodeURIComponent(segment.replace(/~/g, '~0').replace(/\//g, '~1'));
}

function isJson(mediaType: string): boolean {
  return mediaType === 'application/json' || mediaType.endsWith('+json');
}

let sharedValidator: ContractValidator | undefined;
export function contract(): ContractValidator {
  sharedValidator ??= new ContractValidator();
  return sharedValidator;
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

export async function startTestApi(db: Db, overrides: Omit<ContextOverrides, 'db'> = {}): Promise<TestApi> {
  const config = loadConfig({
    DATABASE_URL: testDatabaseUrl(),
    LOG_LEVEL: 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
  });
  const ctx = createContext(config, {
    db,
    log: createLogger({ level: 'silent' }),
    metrics: createMetrics({ defaults: false }),
    waker: quietWaker,
    ...overrides,
  });
  const server: Server = createApiServer(await createApp(ctx));
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
