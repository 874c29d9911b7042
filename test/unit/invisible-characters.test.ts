/**
 * Invisible and direction-changing characters in stored text (src/domain/text.ts and its callers): a holder name
 * refuses every Unicode format character (`\p{Cf}`), and every stored text (a name, a description, a reason)
 * refuses the bidi controls, which can make a name or a note read as something it is not (U+202E turns
 * "Jane\u202Eeod.exe" into what looks like "Janeexe.doe").
 */
import { expect } from 'chai';
import { parseCurrencyTable } from '../../src/domain/currency.js';
import type { FieldError } from '../../src/domain/errors.js';
import { checkReason, createProblems, normaliseNote } from '../../src/domain/payout-request.js';
import { parseRecipient } from '../../src/domain/recipient.js';
import { noteProblem, textProblem } from '../../src/domain/text.js';
import { IBANS } from '../support/fixtures.js';

const MESSAGE = 'must not contain invisible or direction-changing characters';

/** U+202A–U+202E (embeddings, overrides), U+2066–U+2069 (isolates), U+200E/U+200F (marks), U+061C (Arabic mark). */
const BIDI_CONTROLS = [
  '\u202a',
  '\u202b',
  '\u202c',
  '\u202d',
  '\u202e',
  '\u2066',
  '\u2067',
  '\u2068',
  '\u2069',
  '\u200e',
  '\u200f',
  '\u061c',
];

/** Format characters (`\p{Cf}`) that are not bidi controls: zero-width space/joiners, word joiner, BOM, soft hyphen, a tag. */
const OTHER_FORMAT_CHARACTERS = ['\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad', '\u{e0041}'];

const hex = (char: string) => `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

const holderNameErrors = (holderName: string): FieldError[] => {
  const parsed = parseRecipient({ type: 'iban', iban: IBANS.DE, holder_name: holderName });
  return 'errors' in parsed ? parsed.errors : [];
};

describe('invisible and direction-changing characters', () => {
  it('every stored text refuses the bidi controls, by name', () => {
    for (const char of BIDI_CONTROLS) {
      expect(textProblem(`Jane${char}Doe`), hex(char)).to.equal(MESSAGE);
      expect(noteProblem(`Invoice ${char}42`), hex(char)).to.equal(MESSAGE);
    }
  });

  it('a holder name refuses every format character, bidi control or not', () => {
    for (const char of [...BIDI_CONTROLS, ...OTHER_FORMAT_CHARACTERS]) {
      expect(holderNameErrors(`Jane${char}Doe`), hex(char)).to.deep.equal([
        { field: 'recipient.holder_name', message: MESSAGE },
      ]);
    }
  });

  it('a description or a reason keeps the other format characters (a family emoji is joined by U+200D)', () => {
    for (const text of ['Invoice\u200b42', 'Family 👨\u200d👩\u200d👧', 'soft\u00adhyphen']) {
      expect(noteProblem(text), JSON.stringify(text)).to.equal(null);
    }
  });

  it('a create names the holder name and the description, a change names the description and the reason', () => {
    const currencies = parseCurrencyTable(['EUR'], 'EUR:1000000');
    const errors = createProblems(
      {
        amount: '10.00',
        currency: 'EUR',
        recipient: { type: 'iban', iban: IBANS.DE, holder_name: 'Jane \u202eeoD' },
        description: 'Invoice \u206642\u2069',
      },
      currencies,
    );
    expect(errors).to.deep.equal([
      { field: 'recipient.holder_name', message: MESSAGE },
      { field: 'description', message: MESSAGE },
    ]);

    const changeErrors: FieldError[] = [];
    expect(normaliseNote('Invoice \u200f42', 'description', changeErrors)).to.equal(null);
    checkReason('Customer \u202basked', changeErrors);
    expect(changeErrors).to.deep.equal([
      { field: 'description', message: MESSAGE },
      { field: 'reason', message: MESSAGE },
    ]);
  });

  it('the earlier rules still come first, and plain names from any script pass', () => {
    expect(textProblem('a\u0000\u202e')).to.match(/NUL/);
    expect(textProblem('a\u0007\u202e')).to.match(/control/);
    for (const name of ['Jane Doe', 'Zoë Ørsted-Łukasz', 'محمد علي', 'שרה כהן', '山田 太郎', 'Анна']) {
      expect(holderNameErrors(name), name).to.deep.equal([]);
    }
  });
});
