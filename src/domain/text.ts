/**
 * Rules for every string that reaches the database: PostgreSQL rejects NUL and lone surrogates (as a data
 * error, SQLSTATE 22), and control characters in names or descriptions only ever hide something.
 */

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why a string cannot be stored, or null when it can. */
export function textProblem(value: string, options: { allowNewlines?: boolean } = {}): string | null {
  if (value.includes('\u0000')) return 'must not contain NUL characters';
  if (LONE_SURROGATE.test(value)) return 'must not contain unpaired surrogates';
  const withoutNewlines = options.allowNewlines ? value.replace(/\r?\n|\t/g, ' ') : value;
  if (CONTROL.test(withoutNewlines)) return 'must not contain control characters';
  return null;
}

/** True when the string holds no NUL and no lone surrogate (the minimum for any stored or looked-up string). */
export function isStorable(value: string): boolean {
  return !value.includes('\u0000') && !LONE_SURROGATE.test(value);
}

/** Counts user-perceived characters the way a length limit in the contract means them (code points). */
export function codePointLength(value: string): number {
  return [...value].length;
}

const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Only the canonical lower-case 8-4-4-4-12 form; ajv-formats also accepts `urn:uuid:…`, PostgreSQL does not. */
export function isCanonicalUuid(value: string): boolean {
  return CANONICAL_UUID.test(value);
}
