/**
 * The rules of what a caller may ask, before anything is stored: a new payout's fields (the amount against the
 * currency table, the recipient's account, the description), a reason, and the fingerprint that tells two requests
 * under one idempotency key apart. Pure functions; field errors name the caller's fields.
 */
import { createHash } from 'node:crypto';
import type { CurrencyTable } from './currency.js';
import type { FieldError } from './errors.js';
import { ValidationFailed } from './errors.js';
import { Money, MoneyError } from './money.js';
import type { Recipient } from './recipient.js';
import { parseRecipient } from './recipient.js';
import { noteProblem } from './text.js';

export interface CreatePayoutInput {
  amount: string;
  currency: string;
  recipient: { type: string; iban?: string; bic?: string | null; holder_name?: string };
  description?: string | null;
}

export interface NewPayoutFields {
  amount: Money;
  recipient: Recipient;
  description: string | null;
}

/** A new payout's fields, checked; or every bad field at once. */
export function checkCreate(input: CreatePayoutInput, currencies: CurrencyTable): NewPayoutFields {
  const errors: FieldError[] = [];
  let amount: Money | undefined;
  try {
    amount = Money.parse(input.amount, input.currency, currencies);
  } catch (error) {
    if (!(error instanceof MoneyError)) throw error;
    errors.push({ field: error.field, message: error.message });
  }
  const recipient = parseRecipient(input.recipient);
  if ('errors' in recipient) errors.push(...recipient.errors);
  const description =
    input.description === undefined ? null : normaliseNote(input.description, 'description', errors);
  if (errors.length > 0 || !amount || !('recipient' in recipient)) throw new ValidationFailed(errors);
  return { amount, recipient: recipient.recipient, description };
}

/** The field errors of a create request, storing nothing (for an answer that names every bad field). */
export function createProblems(input: CreatePayoutInput, currencies: CurrencyTable): FieldError[] {
  try {
    checkCreate(input, currencies);
    return [];
  } catch (error) {
    if (error instanceof ValidationFailed) return error.fields ?? [];
    throw error;
  }
}

/**
 * A description as stored: trimmed, no control, bidi-control or unstorable characters, at most `NOTE_MAX_LENGTH`
 * (`noteProblem` in src/domain/text.ts); empty becomes null. A problem is added to `errors` under `field`.
 */
export function normaliseNote(raw: string | null, field: string, errors: FieldError[]): string | null {
  if (raw === null) return null;
  const value = raw.trim();
  const problem = noteProblem(value);
  if (problem) {
    errors.push({ field, message: problem });
    return null;
  }
  return value === '' ? null : value;
}

/** A reason as given (not trimmed: it is recorded as written), checked like a note. */
export function checkReason(reason: string | undefined, errors: FieldError[]): void {
  if (reason === undefined) return;
  const problem = noteProblem(reason);
  if (problem) errors.push({ field: 'reason', message: problem });
}

/** SHA-256 of the request's canonical JSON (keys sorted), so key order and whitespace do not matter. */
export function fingerprint(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
