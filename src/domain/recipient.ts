/**
 * The recipient of a payout, discriminated by `type`. Today one kind exists, an IBAN bank account; a new kind
 * is a new member of the union, a new schema in openapi.yaml and a new case in `parseRecipient`.
 */
import type { FieldError } from './errors.js';
import { codePointLength, nameProblem } from './text.js';

export interface IbanRecipient {
  type: 'iban';
  /** Normalised: upper case, no spaces. */
  iban: string;
  bic: string | null;
  holder_name: string;
}

export type Recipient = IbanRecipient;

/** What responses and logs show: the account number reduced to its last four characters. */
export interface MaskedRecipient {
  type: 'iban';
  iban_last4: string;
  iban_masked: string;
  bic: string | null;
  holder_name: string;
}

/** IBAN length by country (SWIFT IBAN registry). */
const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24,
  AE: 23,
  AL: 28,
  AT: 20,
  AZ: 28,
  BA: 20,
  BE: 16,
  BG: 22,
  BH: 22,
  BR: 29,
  BY: 28,
  CH: 21,
  CR: 22,
  CY: 28,
  CZ: 24,
  DE: 22,
  DK: 18,
  DO: 28,
  EE: 20,
  EG: 29,
  ES: 24,
  FI: 18,
  FO: 18,
  FR: 27,
  GB: 22,
  GE: 22,
  GI: 23,
  GL: 18,
  GR: 27,
  GT: 28,
  HR: 21,
  HU: 28,
  IE: 22,
  IL: 23,
  IQ: 23,
  IS: 26,
  IT: 27,
  JO: 30,
  KW: 30,
  KZ: 20,
  LB: 28,
  LC: 32,
  LI: 21,
  LT: 20,
  LU: 20,
  LV: 21,
  MC: 27,
  MD: 24,
  ME: 22,
  MK: 19,
  MR: 27,
  MT: 31,
  MU: 30,
  NL: 18,
  NO: 15,
  PK: 24,
  PL: 28,
  PS: 29,
  PT: 25,
  QA: 29,
  RO: 24,
  RS: 22,
  SA: 24,
  SC: 31,
  SE: 24,
  SI: 19,
  SK: 24,
  SM: 27,
  ST: 25,
  SV: 28,
  TL: 23,
  TN: 24,
  TR: 26,
  UA: 29,
  VA: 22,
  VG: 24,
  XK: 20,
};

const BIC = /^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$/;

/** Upper case, spaces removed: the one stored form of an IBAN. */
export function normaliseIban(raw: string): string {
  return raw.replace(/ /g, '').toUpperCase();
}

/** Why the (normalised) IBAN is invalid, or null. Checks characters, country length and the mod-97 checksum. */
export function ibanProblem(iban: string): string | null {
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{1,30}$/.test(iban))
    return 'must be an IBAN: country code, check digits, account';
  const expected = IBAN_LENGTHS[iban.slice(0, 2)];
  if (expected === undefined) return `country ${iban.slice(0, 2)} does not use IBANs`;
  if (iban.length !== expected) return `must have ${expected} characters for ${iban.slice(0, 2)}`;
  if (ibanRemainder(iban) !== 1) return 'has a wrong checksum';
  return null;
}

/** ISO 13616 mod-97 over the rearranged IBAN, computed piecewise so no big number is needed. */
function ibanRemainder(iban: string): number {
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const char of rearranged) {
    const digits = /\d/.test(char) ? char : String(char.charCodeAt(0) - 55);
    for (const digit of digits) remainder = (remainder * 10 + (digit.charCodeAt(0) - 48)) % 97;
  }
  return remainder;
}

/**
 * Validates a recipient that already passed the contract's shape check (type, required fields, lengths) and
 * returns its stored form, or the field errors under `fieldBase`.
 */
export function parseRecipient(
  input: { type: string; iban?: string; bic?: string | null; holder_name?: string },
  fieldBase = 'recipient',
): { recipient: Recipient } | { errors: FieldError[] } {
  const errors: FieldError[] = [];
  if (input.type !== 'iban') {
    return { errors: [{ field: `${fieldBase}.type`, message: 'must be one of: iban' }] };
  }
  const iban = normaliseIban(input.iban ?? '');
  const ibanIssue = ibanProblem(iban);
  if (ibanIssue) errors.push({ field: `${fieldBase}.iban`, message: ibanIssue });

  let bic: string | null = null;
  if (input.bic !== undefined && input.bic !== null) {
    bic = input.bic.toUpperCase();
    if (!BIC.test(bic))
      errors.push({ field: `${fieldBase}.bic`, message: 'must be a BIC of 8 or 11 characters' });
  }

  const holderName = (input.holder_name ?? '').trim();
  const nameIssue = nameProblem(holderName);
  if (nameIssue) errors.push({ field: `${fieldBase}.holder_name`, message: nameIssue });
  else if (codePointLength(holderName) < 1 || codePointLength(holderName) > 140) {
    errors.push({ field: `${fieldBase}.holder_name`, message: 'must be 1 to 140 characters' });
  }

  if (errors.length > 0) return { errors };
  return { recipient: { type: 'iban', iban, bic, holder_name: holderName } };
}

export function maskRecipient(recipient: Recipient): MaskedRecipient {
  return {
    type: 'iban',
    iban_last4: recipient.iban.slice(-4),
    iban_masked: `${'*'.repeat(recipient.iban.length - 4)}${recipient.iban.slice(-4)}`,
    bic: recipient.bic,
    holder_name: recipient.holder_name,
  };
}
