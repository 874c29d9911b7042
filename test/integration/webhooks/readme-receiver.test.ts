/**
 * The receiver the README shows, run as it is written (its import pointed at the client package's source, its
 * port and its handler supplied): a signed event is handled once however often it comes, a forged one is 400.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { signatureHeader } from '../../../src/domain/webhook-signature.js';
import { waitFor } from '../../support/wait.js';

const SECRET = 'whsec_readme-receiver-test-secret';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("the README's webhook receiver", () => {
  it('verifies, handles each event once, refuses a forged one', async function () {
    this.timeout(60_000);
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const block = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)]
      .map((match) => match[1]!)
      .find((code) => code.includes('verifyWebhook(req.body'));
    expect(block, 'the receiver in the README').to.be.a('string');
    const port = await freePort();
    const source =
      `const handlePayoutEvent = async (event: { id: string }) => { process.stdout.write('handled ' + event.id + '\\n'); };\n` +
      block!
        .replace("from '@payouts/client'", "from '../../../client/src/index.js'")
        .replace('.listen(3000)', `.listen(${port}, () => process.stdout.write('listening\\n'))`);
    const file = new URL('./.readme-receiver.generated.ts', import.meta.url);
    writeFileSync(file, source);
    const child = spawn(process.execPath, ['--import', 'tsx', file.pathname], {
      env: { ...process.env, PAYOUTS_WEBHOOK_SECRET: SECRET },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await waitFor(() => output.includes('listening'), { timeoutMs: 30_000, message: () => output });
      const body = JSON.stringify({ id: 'evt_0192f4f27c3e7a519d0e6c1f2b3a4d5e', type: 'payout.completed' });
      const post = (signature: string) =>
        fetch(`http://127.0.0.1:${port}/payouts/webhooks`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'payouts-signature': signature },
          body,
        });
      const now = Math.floor(Date.now() / 1000);
      expect((await post(signatureHeader([SECRET], now, body))).status).to.equal(204);
      expect((await post(signatureHeader([SECRET], now + 1, body))).status).to.equal(204);
      expect((await post(signatureHeader(['whsec_forged'], now, body))).status).to.equal(400);
      expect((await post(signatureHeader([SECRET], now - 3600, body))).status).to.equal(400);
      expect(output.match(/handled evt_/g)).to.have.length(1);
    } finally {
      child.kill('SIGKILL');
      rmSync(file, { force: true });
    }
  });
});
