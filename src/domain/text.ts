/**
 * Rules for every string that reaches the database: PostgreSQL rejects NUL and lone surrogates (as a data
 * error, SQLSTATE 22), and control characters in names or descriptions only ever hide something. So do the bidi
 * controls in any stored text (a right-to-left override makes "Jane\u202Eeod.exe" read "Janeexe.doe"), and every
 * invisible format character in a name, where nothing legitimate needs one.
 */

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/**
 * The bidi controls: embeddings and overrides (U+202A–U+202E), isolates (U+2066–U+2069), the left-to-right and
 * right-to-left marks (U+200E, U+200F) and the Arabic letter mark (U+061C). They change how the text around them
 * is shown without being seen.
 */
const BIDI_CONTROL = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/;
/**
 * Unicode format characters (general category Cf): the bidi controls and the other invisible ones (zero-width
 * space and joiners, word joiner, byte order mark, soft hyphen, tags). Free text keeps the non-bidi ones: an emoji
 * sequence is joined by U+200D.
 */
const FORMAT = /\p{Cf}/u;
const INVISIBLE = 'must not contain invisible or direction-changing characters';

/** Why a string cannot be stored, or null when it can. */
export function textProblem(value: string, options: { allowNewlines?: boolean } = {}): string | null {
  if (value.includes('\u0000')) return 'must not contain NUL characters';
  if (LONE_SURROGATE.test(value)) return 'must not contain unpaired surrogates';
  const withoutNewlines = options.allowNewlines ? value.replace(/\r?\n|\t/g, ' ') : value;
  if (CONTROL.test(withoutNewlines)) return 'must not contain control characters';
  if (BIDI_CONTROL.test(value)) return INVISIBLE;
  return null;
}

/** Why a name (an account holder's) cannot be stored, or null: the text rules, and no format character at all. */
export function nameProblem(value: string): string | null {
  return textProblem(value) ?? (FORMAT.test(value) ? INVISIBLE : null);
}

/** True when the string holds no NUL and no lone surrogate (the minimum for any stored or looked-up string). */
export function isStorable(value: string): boolean {
  return !value.includes('\u0000') && !LONE_SURROGATE.test(value);
}

/** Counts user-perceived characters the way a length limit in the contract means them (code points). */
export function codePointLength(value: string): number {
  return [...value].length;
}

/**
 * The longest free text a caller may store (a payout's description, the reason of a change), in characters (code
 * points). The database's CHECK (`char_length(...) <= 500`) and openapi.yaml's `maxLength: 500` say the same.
 */
export const NOTE_MAX_LENGTH = 500;

/**
 * Why a free text (a description, a reason) cannot be stored, or null: its characters (`textProblem`, newlines and
 * tabs allowed), then its length.
 */
export function noteProblem(value: string): string | null {
  const problem = textProblem(value, { allowNewlines: true });
  if (problem) return problem;
  return codePointLength(value) > NOTE_MAX_LENGTH ? `must be at most ${NOTE_MAX_LENGTH} characters` : null;
}

/** The text cut to `NOTE_MAX_LENGTH` characters (code points: a surrogate pair is never split in two). */
export function clipNote(value: string): string {
  if (value.length <= NOTE_MAX_LENGTH) return value;
  return [...value].slice(0, NOTE_MAX_LENGTH).join('');
}

/**
 * The canonical lower-case 8-4-4-4-12 form of a UUID, as a pattern source (for JSON schemas) and as the test below;
 * ajv-formats' `uuid` also accepts `urn:uuid:…`, which PostgreSQL refuses.
 */
export const CANONICAL_UUID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

const CANONICAL_UUID = new RegExp(CANONICAL_UUID_PATTERN);

/** Only the canonical form (`CANONICAL_UUID_PATTERN`). */
export function isCanonicalUuid(value: string): boolean {
  return CANONICAL_UUID.test(value);
}
