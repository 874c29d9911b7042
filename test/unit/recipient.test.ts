/** Recipients (src/domain/recipient.ts): IBAN checks and normalisation, field errors, the holder name, masking. */
import { expect } from 'chai';
import fc from 'fast-check';
import { ibanProblem, maskRecipient, normaliseIban, parseRecipient } from '../../src/domain/recipient.js';
import { BAD_CHECKSUM_IBAN, IBANS } from '../support/fixtures.js';

const VALID = Object.values(IBANS);

describe('recipient', () => {
  it('accepts valid IBANs, normalised from spaced lower case', () => {
    for (const iban of VALID) expect(ibanProblem(iban), iban).to.equal(null);
    expect(normaliseIban('de89 3704 0044 0532 0130 00')).to.equal('DE89370400440532013000');
  });

  it('rejects a wrong checksum, a wrong country length and an unknown country', () => {
    expect(ibanProblem(BAD_CHECKSUM_IBAN)).to.match(/checksum/);
    expect(ibanProblem('DE8937040044053201300')).to.match(/22 characters/);
    expect(ibanProblem('ZZ89370400440532013000')).to.match(/country ZZ/);
    expect(ibanProblem('DE89-3704')).to.match(/must be an IBAN/);
  });

  it('detects every single-character substitution of a valid IBAN (mod-97)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...VALID), fc.nat(), fc.integer({ min: 1, max: 9 }), (iban, at, delta) => {
        const index = 4 + (at % (iban.length - 4));
        const char = iban[index]!;
        if (!/\d/.test(char)) return;
        const changed = iban.slice(0, index) + String((Number(char) + delta) % 10) + iban.slice(index + 1);
        expect(ibanProblem(changed)).to.not.equal(null);
      }),
      { seed: 7, numRuns: 500 },
    );
  });

  it('names every bad field at once', () => {
    const result = parseRecipient({ type: 'iban', iban: 'DE00', bic: 'nope', holder_name: 'a\u0000b' });
    expect('errors' in result && result.errors.map((error) => error.field)).to.deep.equal([
      'recipient.iban',
      'recipient.bic',
      'recipient.holder_name',
    ]);
  });

  it('checks holder name length in characters and trims it', () => {
    expect('recipient' in parseRecipient({ type: 'iban', iban: IBANS.DE, holder_name: '  Zoë  ' })).to.equal(
      true,
    );
    expect(
      'errors' in parseRecipient({ type: 'iban', iban: IBANS.DE, holder_name: 'x'.repeat(141) }),
    ).to.equal(true);
    expect('errors' in parseRecipient({ type: 'iban', iban: IBANS.DE, holder_name: '   ' })).to.equal(true);
  });

  it('masks all but the last four characters', () => {
    const masked = maskRecipient({ type: 'iban', iban: IBANS.DE, bic: null, holder_name: 'Jane' });
    expect(masked.iban_last4).to.equal('3000');
    expect(masked.iban_masked).to.equal('******************3000');
    expect(JSON.stringify(masked)).to.not.include('3704004405');
  });
});
