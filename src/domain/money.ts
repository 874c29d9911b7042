/**
 * Money as a value: integer minor units (`bigint`) and a currency. Amounts enter and leave as decimal strings;
 * they never pass through a JS number.
 *
 * Canonical input: an integer part without leading zeros (`0` alone is allowed as the integer part), then
 * optionally a dot and 1 to `minorDigits` fraction digits. `"1250.5"` and `"1250.50"` are the same amount;
 * `"01.50"`, `"1."`, `".5"`, `"1e3"`, `" 1"`, `"+1"`, `"-0"` and `"1,5"` are rejected. Output always carries
 * exactly the currency's minor digits (`"1250.50"`, JPY `"1250"`, KWD `"1.250"`).
 */

/** How money in one currency is written and bounded; the table of them is configuration (src/domain/currency.ts). */
export interface CurrencyRule {
  code: string;
  minorDigits: number;
  /** Largest accepted amount, in minor units. */
  maxMinor: bigint;
}

export type CurrencyTable = ReadonlyMap<string, CurrencyRule>;

export type MoneyProblem = 'format' | 'precision' | 'not_positive' | 'too_large' | 'currency';

export class MoneyError extends Error {
  constructor(
    readonly problem: MoneyProblem,
    readonly field: 'amount' | 'currency',
    message: string,
  ) {
    super(message);
    this.name = 'MoneyError';
  }
}

/** Digits, then optionally a dot and digits: the shape of every decimal amount, in requests and in configuration. */
const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

/**
 * The one conversion of a decimal string in major units to integer minor units: exact, in `bigint`, never through
 * a JS number. Or why there is none: `format` when the string is not digits with an optional fraction (with
 * `canonical`, also when the integer part has a leading zero, `"01.50"`: the rule for amounts a caller sends),
 * `precision` when the fraction has more than `minorDigits` digits.
 */
export function parseDecimal(
  decimal: string,
  minorDigits: number,
  options: { canonical?: boolean } = {},
): { minor: bigint } | { problem: 'format' | 'precision' } {
  const match = DECIMAL.exec(decimal);
  if (!match) return { problem: 'format' };
  const [, whole = '', fraction = ''] = match;
  if (options.canonical && whole.length > 1 && whole.startsWith('0')) return { problem: 'format' };
  if (fraction.length > minorDigits) return { problem: 'precision' };
  return { minor: BigInt(whole + fraction.padEnd(minorDigits, '0')) };
}

/**
 * `parseDecimal` for configuration (provider limits, currency maxima): leading zeros allowed, a `MoneyError` that
 * quotes the string when it is not an amount or has more than `minorDigits` decimal places.
 */
export function decimalToMinor(decimal: string, minorDigits: number): bigint {
  const parsed = parseDecimal(decimal, minorDigits);
  if ('minor' in parsed) return parsed.minor;
  throw parsed.problem === 'format'
    ? new MoneyError('format', 'amount', `"${decimal}" is not a decimal amount`)
    : new MoneyError('precision', 'amount', `"${decimal}" has more than ${minorDigits} decimal places`);
}

export class Money {
  private constructor(
    readonly minor: bigint,
    readonly currency: string,
    readonly minorDigits: number,
  ) {}

  /** Parses a decimal string in the given currency, enforcing every rule of the currency table. */
  static parse(amount: string, currency: string, currencies: CurrencyTable): Money {
    const rule = currencies.get(currency);
    if (!rule) {
      throw new MoneyError('currency', 'currency', `must be one of ${[...currencies.keys()].join(', ')}`);
    }
    const parsed = parseDecimal(amount, rule.minorDigits, { canonical: true });
    if ('problem' in parsed) {
      throw parsed.problem === 'format'
        ? new MoneyError('format', 'amount', 'must be a decimal string such as "1250.50"')
        : new MoneyError(
            'precision',
            'amount',
            `${currency} allows at most ${rule.minorDigits} decimal places`,
          );
    }
    return Money.fromMinor(parsed.minor, rule);
  }

  /** Builds money from minor units already stored (the database). Enforces > 0 but not the maximum. */
  static fromStored(minor: bigint | string, currency: string, minorDigits: number): Money {
    const value = typeof minor === 'bigint' ? minor : BigInt(minor);
    if (value <= 0n) throw new MoneyError('not_positive', 'amount', 'must be greater than 0');
    return new Money(value, currency, minorDigits);
  }

  private static fromMinor(minor: bigint, rule: CurrencyRule): Money {
    if (minor <= 0n) throw new MoneyError('not_positive', 'amount', 'must be greater than 0');
    if (minor > rule.maxMinor) {
      throw new MoneyError(
        'too_large',
        'amount',
        `must be at most ${formatMinor(rule.maxMinor, rule.minorDigits)} ${rule.code}`,
      );
    }
    return new Money(minor, rule.code, rule.minorDigits);
  }

  /** The canonical decimal string, always with exactly the currency's minor digits. */
  toDecimal(): string {
    return formatMinor(this.minor, this.minorDigits);
  }

  isGreaterThan(other: Money): boolean {
    if (other.currency !== this.currency) throw new Error('cannot compare amounts in different currencies');
    return this.minor > other.minor;
  }
}

export function formatMinor(minor: bigint, minorDigits: number): string {
  const digits = minor.toString().padStart(minorDigits + 1, '0');
  if (minorDigits === 0) return digits;
  return `${digits.slice(0, -minorDigits)}.${digits.slice(-minorDigits)}`;
}
