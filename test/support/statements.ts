/**
 * Records every SQL statement the service's own code sends while the integration tests run, with one example of
 * its values, so that `make plans-check` (scripts/plans-check.ts) can ask PostgreSQL how it would run each of them
 * on large tables. A statement is the service's when the innermost frame of its call stack outside node_modules
 * is in `src/`; the tests' own reads and writes (fixtures, assertions) are left out.
 *
 * Only this process is recorded: roles a test starts as child processes run the same code as the in-process
 * roles of other tests.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, sep } from 'node:path';
import pg from 'pg';

const require = createRequire(import.meta.url);
/** knex's client and runner: a query builder remembers where it was made, and lends that to its statements. */
const KnexClient = require('knex/lib/client.js') as { prototype: Record<string, unknown> };
/** PostgreSQL's client makes its own query builders. */
const KnexPgClient = require('knex/lib/dialects/postgres/index.js') as { prototype: Record<string, unknown> };
const KnexRunner = require('knex/lib/execution/runner.js') as { prototype: Record<string, unknown> };
const ORIGIN = Symbol('statement origin');

/** One statement as recorded: its text and the values of its first run, as node-postgres sent them. */
export interface RecordedStatement {
  text: string;
  values: Array<string | null>;
  /** Where the service sent it from (its innermost `src/` frame), to find it again. */
  from: string;
  /** Sent as a named statement: PostgreSQL may run it with a generic plan, made without its values. */
  named: boolean;
}

const SRC = `${sep}src${sep}`;
const NODE_MODULES = `${sep}node_modules${sep}`;

/** The innermost frame of the current stack outside node_modules and Node itself, or undefined. */
function callerFrame(stack: string): string | undefined {
  for (const line of stack.split('\n').slice(1)) {
    const frame = line.trim();
    if (
      frame.includes(NODE_MODULES) ||
      frame.includes('node:') ||
      frame.includes(`${sep}statements.ts`) ||
      // The pool's wrapper of every connection's `query` (the client-side statement bound): not a caller.
      frame.includes(`${SRC}persistence${sep}db.ts`)
    )
      continue;
    return frame;
  }
  return undefined;
}

interface SentQuery {
  text: string;
  values: unknown[];
  named: boolean;
}

function textAndValues(args: unknown[]): SentQuery | undefined {
  const [first, second] = args;
  if (typeof first === 'string')
    return { text: first, values: Array.isArray(second) ? second : [], named: false };
  if (first !== null && typeof first === 'object' && typeof (first as { text?: unknown }).text === 'string') {
    const { text, values, name } = first as { text: string; values?: unknown; name?: unknown };
    return {
      text,
      values: Array.isArray(values) ? values : Array.isArray(second) ? second : [],
      named: typeof name === 'string' && name !== '',
    };
  }
  return undefined;
}

function stackNow(): string {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 100;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  return stack;
}

/** Replaces `object[name]` with `wrap(original)`; returns the undo. */
function patch(
  object: Record<string, unknown>,
  name: string,
  wrap: (original: (...args: unknown[]) => unknown) => (...args: unknown[]) => unknown,
): () => void {
  const original = object[name] as (...args: unknown[]) => unknown;
  object[name] = wrap(original);
  return () => {
    object[name] = original;
  };
}

/** Starts recording; `save` writes what was recorded (distinct texts, first values) to `file` as JSON. */
export function recordStatements(file: string): { save(): void } {
  const recorded = new Map<string, RecordedStatement>();
  // A knex statement runs after an `await` of its builder, where the stack no longer says who made it: the
  // builder keeps the stack of its making, and its runner hands it to the statement it sends.
  let running: string | undefined;
  const makesBuilder = (original: (...args: unknown[]) => unknown) =>
    function (this: unknown, ...args: unknown[]) {
      const made = original.apply(this, args);
      if (made !== null && typeof made === 'object') (made as Record<symbol, string>)[ORIGIN] = stackNow();
      return made;
    };
  const undo = [
    patch(KnexClient.prototype, 'queryBuilder', makesBuilder),
    patch(KnexPgClient.prototype, 'queryBuilder', makesBuilder),
    patch(KnexClient.prototype, 'raw', makesBuilder),
    patch(
      KnexRunner.prototype,
      'query',
      (original) =>
        function (this: { builder?: Record<symbol, string> }, ...args: unknown[]) {
          running = this.builder?.[ORIGIN];
          try {
            return original.apply(this, args);
          } finally {
            running = undefined;
          }
        },
    ),
  ];
  const prototype = pg.Client.prototype as unknown as Record<string, unknown>;
  undo.push(
    patch(
      prototype,
      'query',
      (original) =>
        function (this: unknown, ...args: unknown[]) {
          record(textAndValues(args));
          return original.apply(this, args);
        },
    ),
  );
  function record(query: SentQuery | undefined): void {
    if (query !== undefined && !recorded.has(query.text)) {
      const frame = callerFrame(running ?? stackNow());
      if (frame?.includes(SRC)) {
        recorded.set(query.text, {
          text: query.text,
          values: query.values.map((value) => {
            const prepared = prepareValue(value);
            if (prepared === null || prepared === undefined) return null;
            // bytea as PostgreSQL's hex input.
            if (Buffer.isBuffer(prepared)) return `\\x${prepared.toString('hex')}`;
            return typeof prepared === 'string' ? prepared : JSON.stringify(prepared);
          }),
          from: frame.replace(/^at /, ''),
          named: query.named,
        });
      }
    }
  }
  return {
    save() {
      for (const restore of undo) restore();
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, `${JSON.stringify([...recorded.values()], null, 1)}\n`);
    },
  };
}

/** A value as node-postgres sends it: text (dates, arrays and objects serialised), or null. */
function prepareValue(value: unknown): unknown {
  return (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils.prepareValue(value);
}
