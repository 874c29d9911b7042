/** The simulated provider's per-currency limits (PROVIDER_LIMITS), read as exact minor units. */
import { expect } from 'chai';
import { decimalToMinor } from '../../src/adapters/simulated-provider.js';

describe('simulated provider: limits', () => {
  it('converts limits to minor units exactly', () => {
    expect(decimalToMinor('1000.5', 3)).to.equal(1_000_500n);
    expect(decimalToMinor('30000000', 0)).to.equal(30_000_000n);
    expect(decimalToMinor('92233720368547758.07', 2)).to.equal(9_223_372_036_854_775_807n);
    expect(() => decimalToMinor('1.234', 2)).to.throw();
  });
});
