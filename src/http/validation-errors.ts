/**
 * Turns ajv's errors (as openapi-backend reports them) into one `{pointer, message}` per bad field.
 *
 * openapi-backend validates `{ requestBody }` and `{ path, query, header }` objects, so ajv's instance paths
 * start with `/requestBody`, `/query`, `/path` or `/header`; the pointers clients see start with `/body`,
 * `/query`, `/path` or `/header`. ajv runs with `allErrors` and `verbose`: every bad field is reported, and each
 * error carries the schema it failed, which lets the contract supply a readable message (`x-error-message`)
 * and name immutable fields (`x-immutable`).
 */
import type { ErrorObject } from 'ajv';
import type { FieldProblem } from './problem.js';
import type { CreatePayoutInput } from '../domain/payout-service.js';

/** More than this many field errors only repeat the point; the response stays small whatever the input. */
export const MAX_FIELD_ERRORS = 100;

/** When one field fails several keywords, the first of these names the problem best. */
const PRIORITY = [
  'required',
  'additionalProperties',
  'discriminator',
  'type',
  'enum',
  'format',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'minProperties',
];

/** Combinators only say "a branch failed"; the branch's own errors already name the field. */
const NOISE = new Set(['oneOf', 'anyOf', 'allOf', 'if', 'not']);

/** Keywords for which the contract's `x-error-message` replaces ajv's wording. */
const CUSTOMISABLE = new Set(['type', 'pattern', 'format', 'minLength', 'maxLength']);

interface SchemaLike {
  'x-error-message'?: unknown;
  'x-immutable'?: unknown;
  oneOf?: unknown;
  properties?: Record<string, unknown>;
}

export function fieldErrors(errors: readonly ErrorObject[]): FieldProblem[] {
  const byPointer = new Map<string, { rank: number; message: string }>();
  const noise: string[] = [];
  for (const error of errors) {
    // openapi-backend parses a body that is a JSON string once more, as JSON text. The body parser has already
    // checked the JSON, the type check reports the string, and this message would quote the body.
    if (error.keyword === 'parse') continue;
    const pointer = pointerOf(error);
    if (NOISE.has(error.keyword)) {
      noise.push(pointer);
      continue;
    }
    const rank = PRIORITY.indexOf(error.keyword) === -1 ? PRIORITY.length : PRIORITY.indexOf(error.keyword);
    const existing = byPointer.get(pointer);
    if (!existing || rank < existing.rank) byPointer.set(pointer, { rank, message: messageOf(error) });
  }
  // A combinator error is kept only when nothing at or under its field explains it.
  for (const pointer of noise) {
    const explained = [...byPointer.keys()].some(
      (other) => other === pointer || other.startsWith(`${pointer}/`),
    );
    if (!explained) byPointer.set(pointer, { rank: PRIORITY.length, message: 'is not valid' });
  }
  return [...byPointer.entries()]
    .slice(0, MAX_FIELD_ERRORS)
    .map(([pointer, { message }]) => ({ pointer, message }));
}

function pointerOf(error: ErrorObject): string {
  const base = requestPointer(error.instancePath);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      // The missing body itself is reported as a missing property `requestBody` of the wrapper object.
      if (error.instancePath === '' && params.missingProperty === 'requestBody') return '/body';
      return `${base}/${escapePointer(String(params.missingProperty))}`;
    case 'additionalProperties':
      return `${base}/${escapePointer(String(params.additionalProperty))}`;
    case 'discriminator':
      return `${base}/${escapePointer(String(params.tag))}`;
    default:
      return base;
  }
}

function requestPointer(instancePath: string): string {
  if (instancePath === '/requestBody' || instancePath.startsWith('/requestBody/')) {
    return `/body${instancePath.slice('/requestBody'.length)}`;
  }
  return instancePath === '' ? '/' : instancePath;
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function messageOf(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  const schema = (error.parentSchema ?? {}) as SchemaLike;
  const custom = schema['x-error-message'];
  if (CUSTOMISABLE.has(error.keyword) && typeof custom === 'string') return custom;
  switch (error.keyword) {
    case 'required':
      return 'is required';
    case 'additionalProperties': {
      const immutable = schema['x-immutable'];
      if (Array.isArray(immutable) && immutable.includes(params.additionalProperty)) {
        return 'is immutable: cancel this payout and create a new one instead';
      }
      return error.instancePath.startsWith('/query') ? 'is not a known parameter' : 'is not a known field';
    }
    case 'discriminator':
      if (params.error === 'mapping')
        return `must be one of: ${discriminatorValues(schema, String(params.tag))}`;
      return 'is required and must be a string';
    case 'type':
      return `must be ${article(String(params.type))} ${String(params.type)}`;
    case 'enum':
      return `must be one of: ${(params.allowedValues as unknown[]).map(String).join(', ')}`;
    case 'format':
      return `must be a valid ${String(params.format)}`;
    case 'minLength':
      return `must be at least ${String(params.limit)} characters`;
    case 'maxLength':
      return `must be at most ${String(params.limit)} characters`;
    case 'minimum':
      return `must be at least ${String(params.limit)}`;
    case 'maximum':
      return `must be at most ${String(params.limit)}`;
    case 'minProperties':
      return 'must not be empty';
    default:
      return error.message ?? 'is not valid';
  }
}

/** The values of the tag property over the discriminated union's branches, e.g. `iban`. */
function discriminatorValues(schema: SchemaLike, tag: string): string {
  const branches = Array.isArray(schema.oneOf) ? (schema.oneOf as SchemaLike[]) : [];
  const values = branches.flatMap((branch) => {
    const property = branch.properties?.[tag] as { enum?: unknown[] } | undefined;
    return Array.isArray(property?.enum) ? property.enum.map(String) : [];
  });
  return values.length > 0 ? values.join(', ') : 'a supported type';
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? 'an' : 'a';
}

/**
 * A create body the contract refused, reduced to the typed input the domain rules read: fields of the wrong
 * type become absent, so the domain can still judge the fields that are right (amount precision, IBAN
 * checksum) and every bad field is named in one answer.
 */
export function bestEffortCreateInput(body: unknown): CreatePayoutInput {
  const object = isObject(body) ? body : {};
  const recipient = isObject(object.recipient) ? object.recipient : {};
  const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
  return {
    amount: text(object.amount) ?? '',
    currency: text(object.currency) ?? '',
    recipient: {
      type: text(recipient.type) ?? '',
      iban: text(recipient.iban),
      bic: text(recipient.bic) ?? null,
      holder_name: text(recipient.holder_name),
    },
    description: text(object.description) ?? null,
  };
}

/** The domain's errors about fields the contract found nothing wrong with (nor with their parents or children). */
export function besideContractErrors(contract: FieldProblem[], domain: FieldProblem[]): FieldProblem[] {
  const related = (a: string, b: string) => a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
  return domain.filter((error) => !contract.some((known) => related(known.pointer, error.pointer)));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
