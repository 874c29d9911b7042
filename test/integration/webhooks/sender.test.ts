/**
 * The webhook sender against real sockets: at most 1 KiB of an answer kept (an endless answer does not hold an
 * attempt), the scheme and private-address rules, a timeout.
 */
import type { Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { HttpWebhookSender, RESPONSE_BYTES_KEPT } from '../../../src/adapters/webhook-http.js';

describe('webhook sender', () => {
  let server: Server;
  let port: number;
  let answer: (res: ServerResponse) => void;

  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => answer(res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const open = new HttpWebhookSender({ allowHttp: true, allowPrivate: true, timeoutMs: 1_000 });
  const request = (url = `http://127.0.0.1:${port}/hook`) => ({ url, headers: {}, body: '{}' });

  it('keeps at most 1 KiB of an answer, and an endless answer ends the attempt once that much is read', async () => {
    answer = (res) => res.writeHead(500).end('x'.repeat(100_000));
    const big = await open.send(request());
    expect(big).to.include({ kind: 'answered', statusCode: 500 });
    expect((big as { body: string }).body).to.have.length(RESPONSE_BYTES_KEPT);

    answer = (res) => {
      res.writeHead(200);
      const timer = setInterval(() => res.write('y'.repeat(512)), 5);
      res.on('close', () => clearInterval(timer));
    };
    const started = Date.now();
    const endless = await open.send(request());
    expect(endless).to.include({ kind: 'answered', statusCode: 200 });
    expect(Date.now() - started).to.be.lessThan(900);
  });

  it('gives up on a receiver that does not answer within the timeout', async () => {
    answer = () => undefined;
    expect(await open.send(request())).to.deep.equal({
      kind: 'unreachable',
      error: 'no answer within 1000 ms',
    });
  });

  it('refuses http, loopback literals and names that resolve to them unless allowed, before any request', async () => {
    let reached = 0;
    answer = (res) => {
      reached += 1;
      res.end();
    };
    const strict = new HttpWebhookSender({ allowHttp: false, allowPrivate: false, timeoutMs: 1_000 });
    expect(await strict.send(request())).to.deep.equal({ kind: 'refused', error: 'scheme http: refused' });
    const httpOnly = new HttpWebhookSender({ allowHttp: true, allowPrivate: false, timeoutMs: 1_000 });
    expect(await httpOnly.send(request())).to.deep.equal({
      kind: 'refused',
      error: '127.0.0.1 is a private address',
    });
    expect(await httpOnly.send(request(`http://[::1]:${port}/`))).to.deep.equal({
      kind: 'refused',
      error: '::1 is a private address',
    });
    expect(await httpOnly.send(request(`http://[::ffff:127.0.0.1]:${port}/`))).to.include({
      kind: 'refused',
    });
    const byName = await httpOnly.send(request(`http://localhost:${port}/`));
    expect(byName.kind).to.equal('refused');
    expect(reached).to.equal(0);
  });
});
