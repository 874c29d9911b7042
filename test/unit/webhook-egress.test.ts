/** Where webhooks may go (registration's check, the dispatcher's address check) and how secrets are sealed. */
import { expect } from 'chai';
import { endpointUrlProblem, isForbiddenAddress } from '../../src/domain/webhook-egress.js';
import { SecretBox } from '../../src/persistence/secret-box.js';
import { loadConfig, parseDuration } from '../../src/config.js';

describe('webhook egress rules', () => {
  it('refuses loopback, private, link-local, metadata, mapped and reserved addresses', () => {
    for (const address of [
      '127.0.0.1',
      '10.0.0.1',
      '172.16.5.4',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '::1',
      '::',
      'fe80::1',
      'fd00:ec2::254',
      'fc00::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:a9fe:a9fe',
      '64:ff9b::10.0.0.1',
      'not-an-address',
    ]) {
      expect(isForbiddenAddress(address), address).to.equal(true);
    }
  });

  it('lets public addresses through', () => {
    for (const address of [
      '93.184.216.34',
      '8.8.8.8',
      '2606:2800:220:1:248:1893:25c8:1946',
      '::ffff:8.8.8.8',
    ]) {
      expect(isForbiddenAddress(address), address).to.equal(false);
    }
  });

  it('checks a URL by syntax and scheme, honouring the policy, without DNS', () => {
    const strict = { allowHttp: false, allowPrivate: false };
    const open = { allowHttp: true, allowPrivate: true };
    expect(endpointUrlProblem('https://hooks.example.com/x', strict)).to.equal(null);
    expect(endpointUrlProblem('http://hooks.example.com/x', strict)).to.equal('must be an https URL');
    expect(endpointUrlProblem('http://hooks.example.com/x', { ...strict, allowHttp: true })).to.equal(null);
    expect(endpointUrlProblem('ftp://hooks.example.com/x', open)).to.equal('must be an http or https URL');
    expect(endpointUrlProblem('https://127.0.0.1:9/x', strict)).to.match(/loopback/);
    expect(endpointUrlProblem('http://127.0.0.1:9/x', open)).to.equal(null);
    expect(endpointUrlProblem('https://app.localhost/x', strict)).to.match(/loopback/);
    expect(endpointUrlProblem('https://a@hooks.example.com/', strict)).to.match(/user name/);
    expect(endpointUrlProblem('https://hooks.example.com/#x', strict)).to.match(/fragment/);
    expect(endpointUrlProblem(`https://hooks.example.com/${'a'.repeat(2048)}`, strict)).to.match(/at most/);
  });
});

describe('SecretBox (AES-256-GCM)', () => {
  const box = new SecretBox(Buffer.alloc(32, 7));

  it('opens what it sealed, for the endpoint it was sealed for only', () => {
    const sealed = box.seal('whsec_abc', 'endpoint-1');
    expect(sealed.includes(Buffer.from('whsec_abc'))).to.equal(false);
    expect(box.open(sealed, 'endpoint-1')).to.equal('whsec_abc');
    expect(() => box.open(sealed, 'endpoint-2')).to.throw();
    expect(() => new SecretBox(Buffer.alloc(32, 8)).open(sealed, 'endpoint-1')).to.throw();
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1]! ^= 1;
    expect(() => box.open(tampered, 'endpoint-1')).to.throw();
  });
});

describe('webhook settings', () => {
  it('reads durations with units, and refuses anything else naming the variable', () => {
    expect(parseDuration('1s')).to.equal(1000);
    expect(parseDuration('5m')).to.equal(300_000);
    expect(parseDuration('24h')).to.equal(86_400_000);
    expect(parseDuration('0s')).to.equal(null);
    expect(parseDuration('5')).to.equal(null);
    expect(parseDuration('200h')).to.equal(null);
    const config = loadConfig({ WEBHOOK_RETRY_SCHEDULE: '1s,2s,3s,5s', WEBHOOK_SECRET_OVERLAP: '2m' });
    expect(config.webhookRetryScheduleMs).to.deep.equal([1000, 2000, 3000, 5000]);
    expect(config.webhookSecretOverlapMs).to.equal(120_000);
    expect(loadConfig({}).webhookRetryScheduleMs.reduce((a, b) => a + b, 0) / 86_400_000).to.be.closeTo(
      3.2,
      0.1,
    );
    expect(() => loadConfig({ WEBHOOK_RETRY_SCHEDULE: '1s,soon' })).to.throw(/WEBHOOK_RETRY_SCHEDULE/);
    expect(() => loadConfig({ WEBHOOK_SECRET_KEY: 'short' })).to.throw(/WEBHOOK_SECRET_KEY/);
    expect(() => loadConfig({ WEBHOOK_ALLOW_HTTP: 'yes' })).to.throw(/WEBHOOK_ALLOW_HTTP/);
  });
});
