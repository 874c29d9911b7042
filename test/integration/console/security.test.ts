/**
 * The console's security, over HTTP: every cookie it sets is HttpOnly, SameSite=Strict, Secure (unless turned off
 * for development) and expiring; the CSRF token travels in the page; client keys and unknown keys cannot sign in;
 * a POST without the session's CSRF token is refused; sign-out (and revoking the key) ends the session; the
 * session cookie never authenticates the API; another client's payout is not found; the typed key never reaches
 * a log; every answer, redirects included, carries the console's CSP.
 */
import { expect } from 'chai';
import { createLogger } from '../../../src/logger.js';
import type { Db } from '../../../src/persistence/db.js';
import { openTestDb } from '../../support/database.js';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient, payoutIn, revokeApiKeys } from '../../support/fixtures.js';
import type { TestApi } from '../../support/http.js';
import { startTestApi } from '../../support/http.js';
import { LogCapture } from '../../support/logs.js';
import { createPayoutOverHttp } from '../http/helpers.js';
import {
  ConsoleClient,
  SESSION_COOKIE,
  SIGN_IN_COOKIE,
  expectConsoleCsp,
  parseSetCookie,
} from './helpers.js';

describe('console: sessions, cookies, CSRF, roles and tenancy', function () {
  this.timeout(30_000);
  let db: Db;
  let api: TestApi;
  let logs: LogCapture;
  let acme: TestClient;
  let other: TestClient;

  before(async () => {
    db = openTestDb(4);
    logs = new LogCapture();
    api = await startTestApi(db, { log: createLogger({ level: 'debug', destination: logs }) });
    acme = await createTestClient(db, 'console-acme');
    other = await createTestClient(db, 'console-other');
  });

  after(async () => {
    await api?.close();
    await db?.destroy();
  });

  const client = () => new ConsoleClient(api.baseUrl);

  function expectConsoleCookie(header: string, name: string, secure = true): void {
    const cookie = parseSetCookie(header);
    expect(cookie.name).to.equal(name);
    expect(cookie.attributes, header).to.have.property('httponly');
    expect(cookie.attributes.samesite, header).to.equal('Strict');
    expect(cookie.attributes.path, header).to.equal('/console');
    expect(Number(cookie.attributes['max-age']), header).to.be.greaterThan(0);
    expect(cookie.attributes.expires, header).to.be.a('string');
    if (secure) expect(cookie.attributes, header).to.have.property('secure');
    else expect(cookie.attributes, header).to.not.have.property('secure');
  }

  it('GET /console redirects to the sign-in page, with the same CSP as every page', async () => {
    const response = await client().get('/console');
    expect(response.status).to.be.oneOf([302, 303]);
    expect(response.headers.get('location')).to.equal('/console/sign-in');
    expectConsoleCsp(response, 'GET /console');
    const page = await client().get('/console/sign-in');
    expectConsoleCsp(page, 'GET /console/sign-in');
    expect(page.headers.get('cache-control')).to.equal('no-store');
    const css = await client().get('/console/console.css');
    expect(css.status).to.equal(200);
    expect(css.headers.get('content-type')).to.match(/^text\/css/);
  });

  it('the sign-in form: a password field in a form, its CSRF token in the page and in an HttpOnly cookie', async () => {
    const response = await client().get('/console/sign-in');
    expect(response.text).to.match(/<form method="post" action="\/console\/sign-in">/);
    expect(response.text).to.match(/<input\s+id="key"\s+name="key"\s+type="password"/);
    expect(response.text).to.match(/<label for="key">/);
    expect(response.setCookies).to.have.length(1);
    expectConsoleCookie(response.setCookies[0]!, SIGN_IN_COOKIE);
  });

  it('an operator key signs in: an HttpOnly, SameSite=Strict, Secure, expiring session cookie; the list follows', async () => {
    const browser = client();
    const answer = await browser.signIn(acme.operatorKey);
    expect(answer.status, answer.text.slice(0, 300)).to.equal(303);
    expect(answer.headers.get('location')).to.equal('/console/payouts');
    expectConsoleCsp(answer, 'sign-in redirect');
    const session = answer.setCookies.find((header) => header.startsWith(`${SESSION_COOKIE}=`));
    expect(session, answer.setCookies.join('\n')).to.be.a('string');
    expectConsoleCookie(session!, SESSION_COOKIE);
    expect(Number(parseSetCookie(session!).attributes['max-age'])).to.equal(8 * 3600);
    // The pre-session cookie is cleared, with the same attributes.
    const cleared = answer.setCookies.find((header) => header.startsWith(`${SIGN_IN_COOKIE}=`));
    expect(parseSetCookie(cleared!).attributes['max-age']).to.equal('0');
    const list = await browser.get('/console/payouts');
    expect(list.status).to.equal(200);
    expect(list.text).to.include('<h1>Payouts</h1>');
    // The CSRF token is in the page's forms, never in a cookie.
    expect(browser.csrf).to.match(/^[A-Za-z0-9_-]{43}$/);
    expect([...browser.cookies.values()]).to.not.include(browser.csrf);
    // Only the session's hash is stored.
    const rows = await db('console_sessions').select('id_hash');
    expect(rows.map((row: { id_hash: string }) => row.id_hash)).to.not.include(
      browser.cookies.get(SESSION_COOKIE),
    );
  });

  it('without Secure when CONSOLE_SECURE_COOKIES=false (plain-HTTP development)', async () => {
    const insecureDb = openTestDb(2);
    const insecure = await startTestApi(insecureDb, {}, { CONSOLE_SECURE_COOKIES: 'false' });
    try {
      const browser = new ConsoleClient(insecure.baseUrl);
      const form = await browser.get('/console/sign-in');
      expectConsoleCookie(form.setCookies[0]!, SIGN_IN_COOKIE, false);
      const answer = await browser.post('/console/sign-in', { key: acme.operatorKey });
      expectConsoleCookie(
        answer.setCookies.find((header) => header.startsWith(`${SESSION_COOKIE}=`))!,
        SESSION_COOKIE,
        false,
      );
    } finally {
      await insecure.close();
      await insecureDb.destroy();
    }
  });

  it('a client key cannot sign in: "operator key required", no session', async () => {
    const browser = client();
    const answer = await browser.signIn(acme.key);
    expect(answer.status).to.equal(403);
    expect(answer.text).to.include('Operator key required.');
    expect(browser.cookies.has(SESSION_COOKIE)).to.equal(false);
    expect((await browser.get('/console/payouts')).headers.get('location')).to.equal('/console/sign-in');
  });

  it('an unknown or revoked key cannot sign in', async () => {
    const answer = await client().signIn(`pk_op_${'A'.repeat(43)}`);
    expect(answer.status).to.equal(401);
    expect(answer.text).to.include('The key is unknown, revoked or expired.');
    expect(answer.setCookies.some((header) => header.startsWith(`${SESSION_COOKIE}=`))).to.equal(false);
  });

  it('the sign-in form without its CSRF token (or with another) is refused', async () => {
    const browser = client();
    await browser.get('/console/sign-in');
    const without = await browser.send('POST', '/console/sign-in', { key: acme.operatorKey });
    expect(without.status).to.equal(403);
    const wrong = await browser.send('POST', '/console/sign-in', {
      key: acme.operatorKey,
      csrf: 'x'.repeat(43),
    });
    expect(wrong.status).to.equal(403);
    expect(browser.cookies.has(SESSION_COOKIE)).to.equal(false);
  });

  it('a POST without the session CSRF token (or with a wrong one) is refused and changes nothing', async () => {
    const payout = await payoutIn(api.ctx, acme, 'created');
    const browser = await client().signedIn(acme.operatorKey);
    const form = { action: 'cancel', reason: 'no token', version: String(payout.version) };
    const without = await browser.send('POST', `/console/payouts/${payout.id}/actions`, form);
    expect(without.status).to.equal(403);
    expect(without.text).to.include('security token is missing or wrong');
    const wrong = await browser.send('POST', `/console/payouts/${payout.id}/actions`, {
      ...form,
      csrf: 'x'.repeat(43),
    });
    expect(wrong.status).to.equal(403);
    expect((await api.ctx.service.getPayout(acme.operator, payout.id)).status).to.equal('created');
    // With the token, the same form is carried out.
    const done = await browser.post(`/console/payouts/${payout.id}/actions`, form);
    expect(done.status, done.text.slice(0, 300)).to.equal(200);
    expect(done.text).to.include('Done (200 OK): the payout is now cancelled.');
    expect((await api.ctx.service.getPayout(acme.operator, payout.id)).status).to.equal('cancelled');
  });

  it('a stale page is 412 in words; an action the machine refuses is 409 in words; a missing reason is 400', async () => {
    const payout = await payoutIn(api.ctx, acme, 'created');
    const browser = await client().signedIn(acme.operatorKey);
    const stale = await browser.post(`/console/payouts/${payout.id}/actions`, {
      action: 'cancel',
      reason: 'stale page',
      version: String(payout.version + 5),
    });
    expect(stale.status).to.equal(412);
    expect(stale.text).to.include('The payout changed since you loaded the page');
    const noReason = await browser.post(`/console/payouts/${payout.id}/actions`, {
      action: 'retry',
      reason: '',
      version: String(payout.version),
    });
    expect(noReason.status).to.equal(400);
    const refused = await browser.post(`/console/payouts/${payout.id}/actions`, {
      action: 'retry',
      reason: 'retry a queued payout',
      version: String(payout.version),
    });
    expect(refused.status).to.equal(409);
    expect(refused.text).to.include('Not allowed now (409 Conflict).');
  });

  it("another client's payout is not found (404), for reading and for acting", async () => {
    const theirs = await payoutIn(api.ctx, other, 'created');
    const browser = await client().signedIn(acme.operatorKey);
    const read = await browser.get(`/console/payouts/${theirs.id}`);
    expect(read.status).to.equal(404);
    expect(read.text).to.include('Payout not found');
    const act = await browser.post(`/console/payouts/${theirs.id}/actions`, {
      action: 'cancel',
      reason: 'not mine',
      version: String(theirs.version),
    });
    expect(act.status).to.equal(404);
    expect((await api.ctx.service.getPayout(other.operator, theirs.id)).status).to.equal('created');
    // Own payouts are found by the search, which takes a full id.
    const mine = await createPayoutOverHttp(api, acme.key);
    const search = await browser.get(`/console/payouts/search?id=${mine}`);
    expect(search.status).to.equal(303);
    expect(search.headers.get('location')).to.equal(`/console/payouts/${mine}`);
    expect((await browser.get(`/console/payouts/search?id=${mine.slice(0, 8)}`)).status).to.equal(400);
  });

  it('the session cookie never authenticates the API', async () => {
    const browser = await client().signedIn(acme.operatorKey);
    const cookie = `${SESSION_COOKIE}=${browser.cookies.get(SESSION_COOKIE)}`;
    const response = await api.request('GET', '/api/payouts', { headers: { cookie } });
    expect(response.status).to.equal(401);
  });

  it('sign-out revokes the session: the old cookie is refused afterwards', async () => {
    const browser = await client().signedIn(acme.operatorKey);
    const cookie = `${SESSION_COOKIE}=${browser.cookies.get(SESSION_COOKIE)}`;
    const csrf = browser.csrf!;
    const out = await browser.post('/console/sign-out');
    expect(out.status).to.equal(303);
    expect(out.headers.get('location')).to.equal('/console/sign-in?signed_out=1');
    expect(parseSetCookie(out.setCookies[0]!).attributes['max-age']).to.equal('0');
    const replayed = new ConsoleClient(api.baseUrl);
    const read = await replayed.send('GET', '/console/payouts', undefined, { cookie });
    expect(read.status).to.equal(303);
    expect(read.headers.get('location')).to.equal('/console/sign-in');
    const post = await replayed.send('POST', '/console/sign-out', { csrf }, { cookie });
    expect(post.status).to.equal(401);
  });

  it('revoking the operator key ends its sessions at once', async () => {
    const team = await createTestClient(db, 'console-revoked');
    const browser = await client().signedIn(team.operatorKey);
    expect((await browser.get('/console/payouts')).status).to.equal(200);
    await revokeApiKeys(db, team.name);
    const after = await browser.get('/console/payouts');
    expect(after.status).to.equal(303);
    expect(after.headers.get('location')).to.equal('/console/sign-in');
  });

  it('the key typed at sign-in never appears in a log, whatever the outcome', async () => {
    const before = logs.lines.length;
    const team = await createTestClient(db, 'console-logs');
    await client().signIn(team.operatorKey);
    await client().signIn(team.key);
    await client().send('POST', '/console/sign-in', { key: team.operatorKey, csrf: 'wrong' });
    const written = logs.lines.slice(before).join('\n');
    expect(written).to.include('console sign-in');
    expect(written).to.include('"path":"/console/sign-in"');
    for (const key of [team.operatorKey, team.key]) {
      expect(written).to.not.include(key);
      expect(written).to.not.include(key.slice(6));
      expect(written).to.not.include(encodeURIComponent(key));
    }
  });

  it('the dead-letters page says so when the broker is away (503, within seconds); the other pages still work', async () => {
    const awayDb = openTestDb(2);
    // Nothing listens on port 1: every connection is refused.
    const away = await startTestApi(awayDb, {}, { AMQP_URL: 'amqp://guest:guest@127.0.0.1:1' });
    try {
      const browser = await new ConsoleClient(away.baseUrl).signedIn(acme.operatorKey);
      const started = Date.now();
      const page = await browser.get('/console/dead-letters');
      expect(page.status).to.equal(503);
      expect(page.text).to.include('The broker is unreachable; dead letters cannot be read now.');
      expect(Date.now() - started).to.be.lessThan(6_000);
      expectConsoleCsp(page, 'broker unreachable');
      expect((await browser.get('/console/payouts')).status).to.equal(200);
    } finally {
      await away.close();
      await awayDb.destroy();
    }
  });

  it('unknown console pages are 404 pages with the CSP; a form body is never read on /api', async () => {
    const browser = await client().signedIn(acme.operatorKey);
    const missing = await browser.get('/console/nowhere');
    expect(missing.status).to.equal(404);
    expectConsoleCsp(missing, '404');
    // The API still answers a form body 415, as before the console.
    const api415 = await api.raw('POST', '/api/payouts', {
      key: acme.key,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'amount=1',
    });
    expect(api415.status).to.equal(415);
  });
});
