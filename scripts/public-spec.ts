/**
 * The client-facing contract: openapi.yaml without the operations that are not for API clients, so SDK generators
 * give them no `getMetrics()`. An operation is left out when one of its tags is an internal tag (`Operations`:
 * health, readiness, metrics; `Documentation`: the spec files and the docs pages) or when it says
 * `x-internal: true`; by tag, so an operation that moves, appears or goes away needs no change here. The app still
 * serves the whole openapi.yaml (openapi-backend routes those operations by operationId too).
 *
 * Components that only the dropped operations used go with them (a generator would otherwise still emit a
 * `Health` type); components nothing references in the first place (published on their own) stay. Tags that
 * name no operation any more leave the tag list.
 *
 *   node --import tsx scripts/public-spec.ts [--in openapi.yaml] [--out public.json|public.yaml] [--drop-tag T]...
 *
 * Without `--out` the JSON goes to stdout; `--drop-tag` (repeatable) replaces the default internal tags.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import YAML from 'yaml';

/** Tags of operations that are not part of the client-facing contract. */
export const INTERNAL_TAGS: readonly string[] = ['Operations', 'Documentation'];

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

type Json = Record<string, unknown>;

export interface PublicSpec {
  document: Json;
  /** The operationIds left out (operations without one: `METHOD path`). */
  dropped: string[];
}

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Whether an operation is internal: tagged with one of `internalTags`, or marked `x-internal: true`. */
export function isInternal(operation: Json, internalTags: readonly string[] = INTERNAL_TAGS): boolean {
  const tags = Array.isArray(operation.tags) ? (operation.tags as unknown[]) : [];
  return operation['x-internal'] === true || tags.some((tag) => internalTags.includes(String(tag)));
}

/** Every local `$ref` (`#/components/schemas/Payout`) under `node`. */
function refsIn(node: unknown, into: Set<string> = new Set()): Set<string> {
  if (Array.isArray(node)) {
    for (const item of node) refsIn(item, into);
  } else if (isObject(node)) {
    if (typeof node.$ref === 'string' && node.$ref.startsWith('#/components/')) into.add(node.$ref);
    for (const value of Object.values(node)) refsIn(value, into);
  }
  return into;
}

/** `#/components/schemas/A~1B` → ['schemas', 'A/B']. */
function componentOf(ref: string): [string, string] | undefined {
  const parts = ref
    .slice('#/components/'.length)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
  return parts.length === 2 ? [parts[0]!, parts[1]!] : undefined;
}

/** The refs `roots` reach, following refs inside the components they name. */
function closure(components: Json, roots: Set<string>): Set<string> {
  const reached = new Set<string>();
  const pending = [...roots];
  while (pending.length > 0) {
    const ref = pending.pop()!;
    if (reached.has(ref)) continue;
    reached.add(ref);
    const at = componentOf(ref);
    const section = at && components[at[0]];
    const target = at && isObject(section) ? section[at[1]] : undefined;
    for (const next of refsIn(target)) if (!reached.has(next)) pending.push(next);
  }
  return reached;
}

/** `source` (not changed) without its internal operations and what only they used. */
export function publicSpec(source: Json, internalTags: readonly string[] = INTERNAL_TAGS): PublicSpec {
  const document = structuredClone(source);
  const paths = isObject(document.paths) ? document.paths : {};
  const dropped: string[] = [];
  const droppedRefs = new Set<string>();

  for (const [path, item] of Object.entries(paths)) {
    if (!isObject(item)) continue;
    for (const method of METHODS) {
      const operation = item[method];
      if (!isObject(operation) || !isInternal(operation, internalTags)) continue;
      dropped.push(
        typeof operation.operationId === 'string' ? operation.operationId : `${method.toUpperCase()} ${path}`,
      );
      refsIn(operation, droppedRefs);
      delete item[method];
    }
    if (!METHODS.some((method) => method in item)) {
      refsIn(item, droppedRefs);
      delete paths[path];
    }
  }

  const components = isObject(document.components) ? document.components : {};
  const onlyDropped = closure(components, droppedRefs);
  // Still needed: whatever the rest of the document references, and whatever a component the dropped operations
  // did not reach references (such a component stays: it is published on its own or used by what stays).
  const roots = refsIn({ ...document, components: undefined });
  for (const [section, entries] of Object.entries(components)) {
    if (!isObject(entries)) continue;
    for (const [name, value] of Object.entries(entries)) {
      const ref = `#/components/${section}/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      if (!onlyDropped.has(ref)) refsIn(value, roots).add(ref);
    }
  }
  const kept = closure(components, roots);
  for (const ref of onlyDropped) {
    const at = componentOf(ref);
    const section = at && components[at[0]];
    if (at && isObject(section) && !kept.has(ref)) delete section[at[1]];
  }

  if (Array.isArray(document.tags)) {
    const used = new Set<string>();
    for (const item of Object.values(paths)) {
      if (!isObject(item)) continue;
      for (const method of METHODS) {
        const operation = item[method];
        const tags = isObject(operation) ? operation.tags : undefined;
        if (Array.isArray(tags)) for (const tag of tags) used.add(String(tag));
      }
    }
    document.tags = (document.tags as unknown[]).filter(
      (tag) => !isObject(tag) || !internalTags.includes(String(tag.name)) || used.has(String(tag.name)),
    );
  }
  return { document, dropped };
}

function main(): void {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const { values } = parseArgs({
    options: {
      in: { type: 'string', default: join(root, 'openapi.yaml') },
      out: { type: 'string' },
      'drop-tag': { type: 'string', multiple: true },
    },
  });
  const source = YAML.parse(readFileSync(values.in, 'utf8')) as Json;
  const { document } = publicSpec(source, values['drop-tag'] ?? INTERNAL_TAGS);
  const text = values.out?.match(/\.ya?ml$/)
    ? YAML.stringify(document, { lineWidth: 0 })
    : `${JSON.stringify(document, null, 2)}\n`;
  if (values.out === undefined) process.stdout.write(text);
  else writeFileSync(values.out, text);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main();
