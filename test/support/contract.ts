/**
 * The contract every HTTP test response is held to: openapi.yaml, checked with ajv over the spec's own schemas —
 * its status documented for that operation, its required headers present and valid, its content type and body
 * matching the documented schema, every error a problem document. No server and no database: test/support/http.ts
 * runs every response of its test API through `contract()`.
 */
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import ajvFormats from 'ajv-formats';
import { expect } from 'chai';
import YAML from 'yaml';
import { RouteTable, locateSpec, withoutDiscriminatorMappings } from '../../src/http/spec.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- response bodies are JSON checked against the contract */

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  /** Parsed JSON when the response is JSON, the text otherwise. */
  body: T;
  text: string;
}

type JsonObject = Record<string, any>;

const PROBLEM = 'application/problem+json';
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Errors that happen before routing (content type, size, malformed JSON) and so on any path. */
const PRE_ROUTING_STATUSES = [400, 413, 414, 415];

/** Validates responses against openapi.yaml with ajv over the spec's own schemas. */
export class ContractValidator {
  readonly document: JsonObject;
  private readonly ajv: Ajv;
  private readonly routes: RouteTable;
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(path = locateSpec()) {
    this.document = withoutDiscriminatorMappings(YAML.parse(readFileSync(path, 'utf8')) as JsonObject);
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
    // 414 is answered before routing, for any route: the contract documents it once (info), not per operation.
    if (response.status === 414) return;
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

export function isJson(mediaType: string): boolean {
  return mediaType === 'application/json' || mediaType.endsWith('+json');
}

let sharedValidator: ContractValidator | undefined;
export function contract(): ContractValidator {
  sharedValidator ??= new ContractValidator();
  return sharedValidator;
}
