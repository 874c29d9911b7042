/** The text rules every stored string follows (src/domain/text.ts), and canonical UUIDs. */
import { expect } from 'chai';
import { isCanonicalUuid, textProblem } from '../../src/domain/text.js';

describe('text rules', () => {
  it('refuses NUL, lone surrogates and control characters', () => {
    expect(textProblem('a\u0000b')).to.match(/NUL/);
    expect(textProblem('a\ud800b')).to.match(/surrogate/);
    expect(textProblem('a\udc00')).to.match(/surrogate/);
    expect(textProblem('a\u0007b')).to.match(/control/);
    expect(textProblem('line\nbreak')).to.match(/control/);
    expect(textProblem('line\nbreak', { allowNewlines: true })).to.equal(null);
    expect(textProblem('emoji 😀 ok')).to.equal(null);
  });

  it('accepts only canonical UUIDs', () => {
    expect(isCanonicalUuid('0195f0a4-8e7b-7c3d-9a1e-2b3c4d5e6f70')).to.equal(true);
    expect(isCanonicalUuid('urn:uuid:0195f0a4-8e7b-7c3d-9a1e-2b3c4d5e6f70')).to.equal(false);
    expect(isCanonicalUuid('0195F0A4-8E7B-7C3D-9A1E-2B3C4D5E6F70')).to.equal(false);
    expect(isCanonicalUuid('{0195f0a4-8e7b-7c3d-9a1e-2b3c4d5e6f70}')).to.equal(false);
  });
});
