/**
 * The state every request carries (src/http/request-context.ts): its logger is made only when a line needs it, and
 * the object keeps fast properties. V8 turns an object literal with a getter into a dictionary-mode object, and with
 * one of those per request a fifth of what the API allocated outlived the young-generation collections meant for it
 * (bench/README.md, "The request state's getter, and pretenuring").
 */
import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import sinon from 'sinon';
import { RequestState } from '../../src/http/request-context.js';
import { createLogger } from '../../src/logger.js';
import { LogCapture } from '../support/logs.js';

describe('request state', () => {
  it('makes its logger when first read, once, bound to the request id', () => {
    const capture = new LogCapture();
    const log = createLogger({ name: 'api', destination: capture });
    const child = sinon.spy(log, 'child');
    const state = new RequestState('req-1', log);
    expect(child.callCount).to.equal(0);
    state.log.info('first');
    state.log.warn('second');
    expect(child.callCount).to.equal(1);
    expect(capture.records().map((line) => [line.request_id, line.msg])).to.deep.equal([
      ['req-1', 'first'],
      ['req-1', 'second'],
    ]);
  });

  it('keeps fast properties, as V8 reports them (its getter lives on the class, not on each object)', () => {
    const script = `
      const { RequestState } = await import('./src/http/request-context.ts');
      const { createLogger } = await import('./src/logger.ts');
      const state = new RequestState('req-1', createLogger({ level: 'silent' }));
      state.problem = 'not_found';
      void state.log;
      const literal = { requestId: 'req-2', get log() { return undefined; } };
      process.stdout.write(JSON.stringify([%HasFastProperties(state), %HasFastProperties(literal)]));`;
    const out = execFileSync(
      process.execPath,
      ['--allow-natives-syntax', '--import', 'tsx', '--input-type=module', '-e', script],
      { encoding: 'utf8' },
    );
    // The literal is the control: it shows the check can tell the two apart on this Node.
    expect(JSON.parse(out)).to.deep.equal([true, false]);
  });
});
