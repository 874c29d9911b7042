/**
 * Signing is a pure function, held to vectors computed independently with openssl:
 *   printf '%s' '<t>.<body>' | openssl dgst -sha256 -hmac '<secret>' -hex
 */
import { expect } from 'chai';
import { WebhookVerificationError, verifyWebhook } from '../../client/src/webhooks.js';
import { signatureHeader, webhookSignature } from '../../src/domain/webhook-signature.js';

const SECRET = 'whsec_c2VjcmV0LWZvci10ZXN0LXZlY3RvcnMtb25seS0xMjM0';
const OLD_SECRET = 'whsec_b2xkLXNlY3JldC1zdGlsbC1zaWduaW5nLWR1cmluZy1vdmVybGFw';
const BODY = '{"id":"evt_0192f4f27c3e7a519d0e6c1f2b3a4d5e","type":"payout.completed"}';

const SIGNATURE_VECTORS = [
  {
    secret: SECRET,
    t: 1767225600,
    body: BODY,
    v1: '40000206fdd9a16eb3a9ad003476a66bb7ac5af0fc2885ccc7aeaa23016c4075',
  },
  {
    secret: OLD_SECRET,
    t: 1767225600,
    body: BODY,
    v1: 'e8af4cd88a89a99ba845ec695637b647c43b777e734bd4e2e8455ab8a76e4b6c',
  },
  {
    secret: SECRET,
    t: 1700000000,
    body: '',
    v1: 'ac306dab6f7d30d4fb91037a14461513f9fa56658f6519f6e668cfada095e1b0',
  },
  {
    secret: SECRET,
    t: 1700000000,
    body: '{"a":"café"}',
    v1: 'b489c03bafd488519a5409910827e9d0d21b3557fabb45bc6ac69f983fe9387e',
  },
];

describe('webhook signatures', () => {
  it('match the openssl vectors, the key being the whole secret with its prefix, the body its UTF-8 bytes', () => {
    for (const vector of SIGNATURE_VECTORS) {
      expect(webhookSignature(vector.secret, vector.t, vector.body)).to.equal(vector.v1);
      expect(webhookSignature(vector.secret, vector.t, Buffer.from(vector.body, 'utf8'))).to.equal(vector.v1);
    }
  });

  it('carry one v1= per active secret, newest first, after the attempt time', () => {
    expect(signatureHeader([SECRET, OLD_SECRET], 1767225600, BODY)).to.equal(
      't=1767225600,v1=40000206fdd9a16eb3a9ad003476a66bb7ac5af0fc2885ccc7aeaa23016c4075,' +
        'v1=e8af4cd88a89a99ba845ec695637b647c43b777e734bd4e2e8455ab8a76e4b6c',
    );
    expect(signatureHeader([SECRET], 1767225600, BODY)).to.equal(
      't=1767225600,v1=40000206fdd9a16eb3a9ad003476a66bb7ac5af0fc2885ccc7aeaa23016c4075',
    );
  });

  it('change with any byte of the body, the time or the secret', () => {
    const base = webhookSignature(SECRET, 1767225600, BODY);
    expect(webhookSignature(SECRET, 1767225601, BODY)).to.not.equal(base);
    expect(webhookSignature(SECRET, 1767225600, `${BODY} `)).to.not.equal(base);
    expect(webhookSignature(SECRET.slice(6), 1767225600, BODY)).to.not.equal(base);
  });

  it('refuse no secret or a time that is not unix seconds', () => {
    expect(() => signatureHeader([], 1, BODY)).to.throw();
    expect(() => signatureHeader([SECRET], 1.5, BODY)).to.throw();
  });
});

describe('verifyWebhook (the client package)', () => {
  const header = `t=1767225600,v1=${SIGNATURE_VECTORS[0]!.v1},v1=${SIGNATURE_VECTORS[1]!.v1}`;

  async function refusal(run: () => Promise<unknown>): Promise<string> {
    try {
      await run();
    } catch (error) {
      expect(error).to.be.an.instanceOf(WebhookVerificationError);
      return (error as Error).message;
    }
    throw new Error('expected a refusal');
  }

  it('accepts the vectors under either secret within the tolerance, and returns the event', async () => {
    for (const secret of [SECRET, OLD_SECRET, [OLD_SECRET, SECRET]]) {
      const event = await verifyWebhook(BODY, header, secret, 300, 1767225600 + 299);
      expect(event).to.deep.equal(JSON.parse(BODY));
    }
    const bytes = new TextEncoder().encode(BODY);
    expect((await verifyWebhook(bytes, header, SECRET, 300, 1767225600)).id).to.match(/^evt_/);
  });

  it('refuses another secret, another body, an old or future time, a missing or malformed header', async () => {
    expect(await refusal(() => verifyWebhook(BODY, header, 'whsec_other', 300, 1767225600))).to.match(
      /no signature/,
    );
    expect(await refusal(() => verifyWebhook(`${BODY} `, header, SECRET, 300, 1767225600))).to.match(
      /no signature/,
    );
    expect(await refusal(() => verifyWebhook(BODY, header, SECRET, 300, 1767225600 + 301))).to.match(
      /tolerance/,
    );
    expect(await refusal(() => verifyWebhook(BODY, header, SECRET, 300, 1767225600 - 301))).to.match(
      /tolerance/,
    );
    expect(await refusal(() => verifyWebhook(BODY, undefined, SECRET))).to.match(/no Payouts-Signature/);
    expect(await refusal(() => verifyWebhook(BODY, 'v1=abc', SECRET))).to.match(/timestamp/);
    expect(await refusal(() => verifyWebhook(BODY, 't=1767225600', SECRET, 300, 1767225600))).to.match(
      /no v1/,
    );
  });
});
