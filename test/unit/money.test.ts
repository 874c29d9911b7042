import { expect } from 'chai';
import fc from 'fast-check';
import { parseCurrencyTable } from '../../src/domain/currency.js';
import { Money, MoneyError, formatMinor } from '../../src/domain/money.js';

const currencies = parseCurrencyTable(
  ['EUR', 'USD', 'JPY', 'KWD'],
  'EUR:1000000,USD:1000000,JPY:150000000,KWD:300000',
);
const FC = { seed: 20261124, numRuns: 2000 };

function problemOf(amount: string, currency = 'EUR'): string | null {
  try {
    Money.parse(amount, currency, currencies);
    return null;
  } catch (error) {
    if (error instanceof MoneyError) return error.problem;
    throw error;
  }
}

describe('Money', () => {
  it('parses into exact minor units and formats canonically with the currency digits', () => {
    expect(Money.parse('1250.50', 'EUR', currencies).minor).to.equal(125050n);
    expect(Money.parse('1250.5', 'EUR', currencies).toDecimal()).to.equal('1250.50');
    expect(Money.parse('0.01', 'USD', currencies).toDecimal()).to.equal('0.01');
    expect(Money.parse('1250', 'JPY', currencies).toDecimal()).to.equal('1250');
    expect(Money.parse('1.25', 'KWD', currencies).toDecimal()).to.equal('1.250');
    expect(Money.parse('0.001', 'KWD', currencies).minor).to.equal(1n);
  });

  it('rejects non-canonical spellings', () => {
    for (const amount of [
      '01.50',
      '1.',
      '.5',
      '1e3',
      ' 1',
      '1 ',
      '+1',
      '-0',
      '-1',
      '1,5',
      '',
      '0x10',
      '١٢',
      'NaN',
      '1.2.3',
    ]) {
      expect(problemOf(amount), JSON.stringify(amount)).to.equal('format');
    }
  });

  it('rejects zero, too many decimals, amounts over the currency maximum and unknown currencies', () => {
    expect(problemOf('0')).to.equal('not_positive');
    expect(problemOf('0.00')).to.equal('not_positive');
    expect(problemOf('1.001')).to.equal('precision');
    expect(problemOf('1.5', 'JPY')).to.equal('precision');
    expect(problemOf('1.0001', 'KWD')).to.equal('precision');
    expect(problemOf('1000000.00')).to.equal(null);
    expect(problemOf('1000000.01')).to.equal('too_large');
    expect(problemOf('99999999999999999999999999')).to.equal('too_large');
    expect(problemOf('1', 'XXX')).to.equal('currency');
    expect(problemOf('1', 'eur')).to.equal('currency');
  });

  it('round-trips every amount exactly: parse(format(minor)) = minor', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('EUR', 'USD', 'JPY', 'KWD'),
        fc.bigInt({ min: 1n, max: 10n ** 12n }),
        (currency, raw) => {
          const rule = currencies.get(currency)!;
          const minor = ((raw - 1n) % rule.maxMinor) + 1n;
          const text = formatMinor(minor, rule.minorDigits);
          const money = Money.parse(text, currency, currencies);
          expect(money.minor).to.equal(minor);
          expect(money.toDecimal()).to.equal(text);
        },
      ),
      FC,
    );
  });

  it('accepts exactly the strings matching the canonical grammar', () => {
    const canonical = /^(0|[1-9]\d*)(\.\d{1,2})?$/;
    fc.assert(
      fc.property(fc.stringMatching(/^[-+ 0-9.e,]{0,12}$/), (text) => {
        const problem = problemOf(text);
        if (!canonical.test(text))
          expect(problem, text).to.equal(/^(0|[1-9]\d*)\.\d{3,}$/.test(text) ? 'precision' : 'format');
        else
          expect(problem === null || problem === 'not_positive' || problem === 'too_large', text).to.equal(
            true,
          );
      }),
      FC,
    );
  });

  it('never uses a float: amounts beyond 2^53 stay exact', () => {
    const big = parseCurrencyTable(['KZT'], 'KZT:9000000000000000');
    const money = Money.parse('90071992547409.93', 'KZT', big);
    expect(money.minor).to.equal(9007199254740993n);
    expect(money.toDecimal()).to.equal('90071992547409.93');
  });
});
