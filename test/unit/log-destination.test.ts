/**
 * `LOG_FORMAT`: JSON wherever a program reads the lines, readable lines where a person does (a terminal, or asked).
 */
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { createLogger, logDestination } from '../../src/logger.js';

/** A standard output that keeps what is written to it, a terminal or not. */
function fakeStdout(isTTY: boolean): NodeJS.WriteStream & { text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return Object.assign(stream, { isTTY, text: () => chunks.join('') }) as unknown as NodeJS.WriteStream & {
    text(): string;
  };
}

describe('log format', () => {
  it('auto: JSON (the default destination) when standard output is not a terminal', () => {
    expect(logDestination('auto', fakeStdout(false))).to.equal(undefined);
  });

  it('json: JSON even on a terminal', () => {
    expect(logDestination('json', fakeStdout(true))).to.equal(undefined);
  });

  for (const [format, isTTY] of [
    ['auto', true],
    ['pretty', false],
  ] as const) {
    it(`${format} (terminal: ${isTTY}): one readable line per entry, level and role first, no JSON`, () => {
      const stdout = fakeStdout(isTTY);
      const log = createLogger({ name: 'api', destination: logDestination(format, stdout) });
      log.info({ payout_id: 'p-1' }, 'payout created');
      // Colours on a terminal: the text without them.
      // eslint-disable-next-line no-control-regex
      const text = stdout.text().replace(/\u001b\[[0-9;]*m/g, '');
      expect(text).to.match(/INFO.*\(api\).*payout created/);
      expect(text).to.include('payout_id: "p-1"');
      expect(text).to.not.include('{"level"');
    });
  }

  it('pretty: account numbers are redacted as in JSON', () => {
    const stdout = fakeStdout(false);
    const log = createLogger({ name: 'api', destination: logDestination('pretty', stdout) });
    log.info({ recipient: { iban: 'GB29NWBK60161331926819' } }, 'payout created');
    expect(stdout.text()).to.include('[redacted]').and.not.include('GB29NWBK60161331926819');
  });
});
