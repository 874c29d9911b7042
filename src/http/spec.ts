/**
 * The contract, `openapi.yaml`: found, parsed and kept in the three forms the app needs (the document for
 * openapi-backend, the YAML and JSON texts it serves), plus a matcher from a request path to its route template
 * (metrics labels, `Allow` of a 405).
 *
 * The served texts are the file as it is; the document for openapi-backend has its discriminators' `mapping`
 * removed. The mapping is for client generators (without it a discriminator names the schema, so generated
 * types read `type: 'IbanRecipientInput'` where the wire says `'iban'`); ajv, which validates requests, refuses
 * it, and needs none: each branch's `type` enum already tells the branches apart.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Document } from 'openapi-backend';
import YAML from 'yaml';

export interface ApiSpec {
  /** Where the document was read from. */
  path: string;
  /**
   * A fresh parse for openapi-backend, which dereferences (and so changes) the object it is given; without the
   * discriminators' `mapping`, which its ajv refuses.
   */
  document(): Document;
  yaml: string;
  json: string;
  routes: RouteTable;
}

const SPEC_FILE = 'openapi.yaml';
/** In the order an `Allow` header lists them. */
const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options', 'trace'] as const;

/**
 * The spec sits at the repository root: two levels above this file in `src/http`, three above it in
 * `dist/src/http`. Walking up finds it from both without knowing which one runs.
 */
export function locateSpec(from = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, SPEC_FILE);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error(`${SPEC_FILE} not found above ${from}`);
  }
}

export function loadSpec(path = locateSpec()): ApiSpec {
  const yaml = readFileSync(path, 'utf8');
  const parsed = YAML.parse(yaml) as Document;
  const json = JSON.stringify(parsed);
  const forValidation = JSON.stringify(withoutDiscriminatorMappings(JSON.parse(json)));
  return {
    path,
    document: () => JSON.parse(forValidation) as Document,
    yaml,
    json,
    routes: new RouteTable(parsed),
  };
}

/**
 * The document with every `discriminator.mapping` removed, in place (ajv: "discriminator: mapping is not
 * supported"). Only a `discriminator` that is one (it names its `propertyName`) is touched, so a property or a
 * schema that happens to be called `discriminator` or `mapping` is left alone.
 */
export function withoutDiscriminatorMappings<T>(document: T): T {
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    const record = node as Record<string, unknown>;
    const discriminator = record.discriminator as Record<string, unknown> | null | undefined;
    if (
      discriminator !== null &&
      typeof discriminator === 'object' &&
      typeof discriminator.propertyName === 'string'
    ) {
      delete discriminator.mapping;
    }
    for (const value of Object.values(record)) visit(value);
  };
  visit(document);
  return document;
}

const SLASH = 0x2f;

/**
 * The path without its trailing slashes (`/` stays `/`). A loop, not `replace(/\/+$/, '')`: that regex tries
 * every run of slashes to the end of the string and fails on what follows, so `/` + 15,000 slashes + `a` held
 * the event loop for hundreds of milliseconds (quadratic), before authentication; this is linear.
 */
export function stripTrailingSlashes(path: string): string {
  let end = path.length;
  while (end > 1 && path.charCodeAt(end - 1) === SLASH) end--;
  return end === path.length ? path : path.slice(0, end);
}

interface Route {
  template: string;
  pattern: RegExp;
  /** The number of literal characters: the more, the more specific (`/a/b` before `/a/{id}`). */
  specificity: number;
  methods: string[];
}

/** The spec's paths as patterns, most specific first. Trailing slashes are ignored, as openapi-backend does. */
export class RouteTable {
  private readonly routes: Route[];

  constructor(document: Document) {
    this.routes = Object.entries(document.paths ?? {})
      .map(([template, item]) => ({
        template,
        pattern: new RegExp(
          `^${template
            .split(/\{[^}]+\}/)
            .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
            .join('[^/]+')}$`,
        ),
        specificity: template.replace(/\{[^}]+\}/g, '').length,
        methods: METHODS.filter((method) => item !== undefined && method in item).map((method) =>
          method.toUpperCase(),
        ),
      }))
      .sort((a, b) => b.specificity - a.specificity);
  }

  /** Every route of the contract with the methods it accepts. */
  all(): Array<{ template: string; methods: string[] }> {
    return this.routes.map(({ template, methods }) => ({ template, methods }));
  }

  /** The route a request path belongs to, or undefined for a path outside the contract. */
  match(path: string): { template: string; methods: string[] } | undefined {
    const normalised = stripTrailingSlashes(path);
    const route = this.routes.find((candidate) => candidate.pattern.test(normalised));
    return route && { template: route.template, methods: route.methods };
  }

  /** The methods a route accepts, as an `Allow` header lists them (HEAD wherever GET is). */
  allowedMethods(path: string): string[] {
    const methods = this.match(path)?.methods ?? [];
    return methods.includes('GET') && !methods.includes('HEAD')
      ? ['GET', 'HEAD', ...methods.slice(1)]
      : methods;
  }
}
