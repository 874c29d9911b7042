import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../src/config.js';
import { brokerAddress, brokerEndpoints } from '../../src/messaging/amqp.js';

describe('config', () => {
  it('works with no environment at all, against the local services', () => {
    const config = loadConfig({});
    expect(config.databaseUrl).to.equal('postgres://postgres@127.0.0.1:5432/payouts');
    expect(config.amqpUrl).to.equal('amqp://guest:guest@127.0.0.1:5672');
    expect(config.port).to.equal(8000);
    expect(config.host).to.equal('127.0.0.1');
    for (const code of ['USD', 'EUR', 'GBP', 'RUB', 'KZT', 'JPY', 'KWD'])
      expect(config.currencies.has(code), code).to.equal(true);
    expect(config.currencies.get('JPY')!.minorDigits).to.equal(0);
    expect(config.currencies.get('KWD')!.maxMinor).to.equal(300000000n);
  });

  it('allows 100 description changes per payout by default, at least 1', () => {
    expect(loadConfig({}).maxDescriptionChanges).to.equal(100);
    expect(loadConfig({ MAX_DESCRIPTION_CHANGES: '1' }).maxDescriptionChanges).to.equal(1);
  });

  it('allows port 0 so tests can bind a free port', () => {
    expect(loadConfig({ PORT: '0' }).port).to.equal(0);
  });

  it('takes the nodes of a RabbitMQ cluster from AMQP_HOSTS, and the URL alone without it', () => {
    const cluster = loadConfig({ AMQP_HOSTS: 'rabbit-0:5672, rabbit-1:5672,10.0.0.3:5673' });
    expect(cluster.amqpHosts).to.deep.equal(['rabbit-0:5672', 'rabbit-1:5672', '10.0.0.3:5673']);
    expect(brokerEndpoints(cluster)).to.deep.equal({
      url: cluster.amqpUrl,
      hosts: ['rabbit-0:5672', 'rabbit-1:5672', '10.0.0.3:5673'],
    });
    expect(brokerAddress(cluster)).to.equal('rabbit-0:5672,rabbit-1:5672,10.0.0.3:5673');
    const single = loadConfig({});
    expect(single.amqpHosts).to.deep.equal([]);
    expect(brokerEndpoints(single)).to.deep.equal({ url: 'amqp://guest:guest@127.0.0.1:5672' });
    expect(brokerAddress(single)).to.equal('127.0.0.1:5672');
  });

  for (const [key, value] of [
    ['PORT', '80a'],
    ['PORT', '70000'],
    ['DATABASE_URL', 'mysql://x'],
    ['AMQP_URL', 'not a url'],
    ['LOG_LEVEL', 'loud'],
    ['CURRENCIES', 'EUR,XYZ'],
    ['CURRENCY_MAX', 'EUR:1.5'],
    ['PROVIDER_FAULT_RATE', '1.5'],
    ['RETRY_DELAYS_MS', '100,abc'],
    ['IDEMPOTENCY_TTL_HOURS', '1'],
    ['CURRENCY_MAX', 'USD:1000000,EUR:1000000,GBP:800000,RUB:1,KZT:1,JPY:1,KWD:9999999999999999,BHD:1,CHF:1'],
    ['PROVIDER_LIMITS', 'XXX:100'],
    ['PROVIDER_LIMITS', 'JPY:100.5'],
    ['AMQP_NAMESPACE', 'a b'],
    ['AMQP_HOSTS', 'rabbit-0'],
    ['AMQP_HOSTS', 'rabbit-0:5672,rabbit-1:70000'],
    ['AMQP_HOSTS', 'amqp://rabbit-0:5672'],
    ['RELAY_LEASE_MS', '100'],
    ['STUCK_AFTER_SECONDS', '30'],
    ['MAX_DESCRIPTION_CHANGES', '0'],
    ['MAX_DESCRIPTION_CHANGES', 'many'],
  ] as const) {
    it(`stops on a bad ${key} and names it`, () => {
      expect(() => loadConfig({ [key]: value })).to.throw(ConfigError, key);
    });
  }
});
