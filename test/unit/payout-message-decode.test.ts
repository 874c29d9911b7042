/**
 * Decoding a delivery's raw bytes into a process message: bounded in size and depth before anything is parsed,
 * strict UTF-8, and never a recursion a hostile body can overflow.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import {
  MAX_MESSAGE_BYTES,
  MAX_MESSAGE_DEPTH,
  decodeProcessMessage,
} from '../../src/messaging/payout-message.js';

const valid = (overrides: Record<string, unknown> = {}) => ({
  schema_version: 2,
  message_id: randomUUID(),
  payout_id: randomUUID(),
  client_id: randomUUID(),
  request_id: 'req-1',
  command: { seq: 1, type: 'process', delay_ms: 0 },
  ...overrides,
});

const bytes = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('decodeProcessMessage', () => {
  it('decodes a valid message', () => {
    const message = valid();
    expect(decodeProcessMessage(bytes(message))).to.deep.equal({ ok: true, message });
  });

  it('refuses JSON nested 5,000 levels deep without overflowing the stack', () => {
    const body = Buffer.from(`${'['.repeat(5_000)}${']'.repeat(5_000)}`);
    expect(decodeProcessMessage(body)).to.deep.equal({
      ok: false,
      reason: 'unparseable',
      detail: `body is JSON nested deeper than ${MAX_MESSAGE_DEPTH} levels`,
    });
  });

  it('counts the depth exactly: the limit passes the scan, one more is refused', () => {
    const nested = (levels: number) => Buffer.from(`${'['.repeat(levels)}${']'.repeat(levels)}`);
    expect(decodeProcessMessage(nested(MAX_MESSAGE_DEPTH))).to.include({ reason: 'invalid_message' });
    expect(decodeProcessMessage(nested(MAX_MESSAGE_DEPTH + 1))).to.include({ reason: 'unparseable' });
  });

  it('does not count brackets or escaped quotes inside strings', () => {
    const message = valid({ request_id: `\\"${'['.repeat(100)}{` });
    expect(decodeProcessMessage(bytes(message))).to.deep.equal({ ok: true, message });
  });

  it('refuses a body over the size limit before parsing it', () => {
    const body = Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x20);
    expect(decodeProcessMessage(body)).to.deep.equal({
      ok: false,
      reason: 'unparseable',
      detail: `body is ${MAX_MESSAGE_BYTES + 1} bytes, over the ${MAX_MESSAGE_BYTES}-byte limit`,
    });
  });

  it('refuses invalid UTF-8 instead of decoding it with replacement characters', () => {
    const body = Buffer.concat([
      Buffer.from('{"request_id":"'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"}'),
    ]);
    expect(decodeProcessMessage(body)).to.deep.equal({
      ok: false,
      reason: 'unparseable',
      detail: 'body is not valid UTF-8',
    });
  });

  it('reads a JSON string as JSON: the wrong shape, not unparseable', () => {
    expect(decodeProcessMessage(Buffer.from('"a string"'))).to.deep.equal({
      ok: false,
      reason: 'invalid_message',
      detail: '/ must be object',
    });
  });

  it('refuses text that is not JSON', () => {
    expect(decodeProcessMessage(Buffer.from('this is not JSON'))).to.include({
      ok: false,
      reason: 'unparseable',
    });
    expect(decodeProcessMessage(Buffer.alloc(0))).to.include({ ok: false, reason: 'unparseable' });
  });
});
