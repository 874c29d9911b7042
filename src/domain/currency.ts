/**
 * The accepted currencies: ISO 4217 code, number of minor digits, and the largest amount a payout may carry.
 * Minor digits follow ISO 4217; the maximum is configuration (`CURRENCY_MAX`), in major units.
 */
import type { CurrencyRule, CurrencyTable } from './money.js';
import { decimalToMinor } from './money.js';

export type { CurrencyRule, CurrencyTable };

/** ISO 4217 minor digits of the currencies this service knows. A currency outside this table cannot be enabled. */
export const MINOR_DIGITS: Readonly<Record<string, number>> = {
  USD: 2,
  EUR: 2,
  GBP: 2,
  CHF: 2,
  RUB: 2,
  KZT: 2,
  PLN: 2,
  SEK: 2,
  JPY: 0,
  KRW: 0,
  KWD: 3,
  BHD: 3,
  OMR: 3,
};

/** PostgreSQL's bigint. */
export const MAX_STORABLE_MINOR = 9223372036854775807n;

/** Parses the whitelist and the `CUR:max,CUR:max` table. Every whitelisted currency needs a maximum. */
export function parseCurrencyTable(codes: string[], maxTable: string): CurrencyTable {
  const maxima = new Map<string, string>();
  for (const entry of maxTable.split(',').map((item) => item.trim())) {
    if (entry === '') continue;
    const match = /^([A-Z]{3}):([1-9]\d{0,15})$/.exec(entry);
    if (!match) throw new Error(`"${entry}" in CURRENCY_MAX is not CUR:whole-amount`);
    maxima.set(match[1]!, match[2]!);
  }
  const table = new Map<string, CurrencyRule>();
  for (const code of codes) {
    const minorDigits = MINOR_DIGITS[code];
    if (minorDigits === undefined) throw new Error(`"${code}" is not a supported ISO 4217 currency`);
    const max = maxima.get(code);
    if (max === undefined) throw new Error(`"${code}" has no maximum in CURRENCY_MAX`);
    const maxMinor = decimalToMinor(max, minorDigits);
    // Amounts are stored as bigint minor units: a maximum beyond it could accept an amount that cannot be stored.
    if (maxMinor > MAX_STORABLE_MINOR)
      throw new Error(`the maximum of ${code} in CURRENCY_MAX does not fit in 64-bit minor units`);
    table.set(code, { code, minorDigits, maxMinor });
  }
  if (table.size === 0) throw new Error('no currency enabled');
  return table;
}
