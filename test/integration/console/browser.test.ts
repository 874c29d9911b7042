/**
 * The operator console in a real browser: Debian's Chromium (/usr/bin/chromium, which .ci/run installs) driven by
 * playwright-core, against the API on the run's database and a broker namespace of its own. An operator signs in
 * by typing the key and pressing Enter, finds a payout created through the API, reads its timeline and state
 * diagram, fails a stuck payout with a reason (the worker carries it out against the provider, whose record
 * agrees), replays a dead letter after confirming the count, and signs out. A client key cannot sign in, and a
 * form posted without its CSRF token is refused. No page may break the CSP or log an error. The screenshots in
 * README.md (docs/screenshots/console-*.png) are taken here.
 *
 * Not skipped without Chromium: a missing /usr/bin/chromium fails the file, since the gate installs it.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { expect } from 'chai';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { workerPrincipal } from '../../../src/domain/principal.js';
import { ConfirmedPublisher } from '../../../src/messaging/amqp.js';
import type { ProcessMessage } from '../../../src/messaging/payout-message.js';
import { processEnvelope, queueDepth, queueDestination } from '../../../src/messaging/topology.js';
import type { Db } from '../../../src/persistence/db.js';
import { AMQP_URL, useConsumerHarness, waitFor, waitForStatus } from '../../support/consumers.js';
import { openTestDb } from '../../support/database.js';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient, payoutInput } from '../../support/fixtures.js';
import type { TestApi } from '../../support/http.js';
import { startTestApi } from '../../support/http.js';
import { createPayoutOverHttp } from '../http/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = new URL('../../../docs/screenshots/', import.meta.url);

describe('console in Chromium', function () {
  this.timeout(120_000);
  const harness = useConsumerHarness();
  let db: Db;
  let api: TestApi;
  let browser: Browser;
  let context: BrowserContext;
  let acme: TestClient;
  let other: TestClient;
  /** What went wrong in the pages of a test: CSP violations and other console errors, uncaught errors. */
  let trouble: string[];

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} not found: the console's browser tests need Debian's chromium (apt-get install chromium)`,
      );
    }
    db = openTestDb(6);
    api = await startTestApi(db, {}, { AMQP_URL, AMQP_NAMESPACE: harness.config.amqpNamespace });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    acme = await createTestClient(db, 'console-e2e');
    other = await createTestClient(db, 'console-e2e-other');
    mkdirSync(SCREENSHOTS, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await api?.close();
    await db?.destroy();
  });

  beforeEach(async () => {
    trouble = [];
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, baseURL: api.baseUrl });
  });

  afterEach(async function () {
    await context?.close();
    await harness.broker.queuePurge({ queue: harness.names.deadLetterQueue });
    await harness.broker.queuePurge({ queue: harness.names.workQueue });
    if (this.currentTest?.state === 'passed') expect(trouble, 'errors in the pages').to.deep.equal([]);
  });

  async function newPage(): Promise<Page> {
    const page = await context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') trouble.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => trouble.push(`page error: ${error.message}`));
    return page;
  }

  /** The browser reported `count` pages answered 403, as the test meant: they are not trouble. */
  function expectRefusedLoads(count: number): void {
    const refusals = trouble.filter((line) => line.includes('status of 403'));
    expect(refusals, trouble.join('\n')).to.have.length(count);
    trouble = trouble.filter((line) => !line.includes('status of 403'));
  }

  /** Types the key into the sign-in form and presses Enter. */
  async function signIn(page: Page, key: string): Promise<void> {
    await page.goto('/console');
    await page.waitForURL('**/console/sign-in');
    await page.getByLabel('Operator key').fill(key);
    await page.getByLabel('Operator key').press('Enter');
  }

  async function signedIn(): Promise<Page> {
    const page = await newPage();
    await signIn(page, acme.operatorKey);
    await page.waitForURL('**/console/payouts');
    return page;
  }

  /** A payout of `acme` given to a person: started, its message dead-lettered; no message of it waits anywhere. */
  async function stuckPayout(): Promise<string> {
    const id = await createPayoutOverHttp(
      api,
      acme.key,
      payoutInput({ amount: '310.00', description: 'Stuck at the provider' }),
    );
    const worker = workerPrincipal(acme.clientId);
    await api.ctx.service.applyEvent(worker, id, { type: 'START' }, { requestId: 'e2e-start' });
    // Its messages were lost (no relay runs here yet): nothing is waiting for a worker.
    await db('outbox').whereRaw(`payload->>'payout_id' = ?`, [id]).update({ published_at: db.fn.now() });
    await api.ctx.service.applyEvent(
      worker,
      id,
      {
        type: 'DEAD_LETTERED',
        code: 'delivery_limit',
        message: 'The message was dead-lettered after too many deliveries.',
        at: new Date().toISOString(),
      },
      { requestId: 'e2e-dead-letter' },
    );
    return id;
  }

  it('signs in with the key and Enter, lands on the list, finds a payout created through the API and reads its timeline and diagram', async () => {
    const id = await createPayoutOverHttp(
      api,
      acme.key,
      payoutInput({ amount: '77.10', currency: 'EUR', description: 'Console tour' }),
    );
    await createPayoutOverHttp(
      api,
      acme.key,
      payoutInput({ amount: '1250.50', currency: 'GBP', description: 'Invoice 42' }),
    );
    const page = await signedIn();
    const cookies = await context.cookies();
    expect(cookies.map((cookie) => cookie.name)).to.deep.equal(['payouts_console']);
    for (const cookie of cookies) {
      expect(cookie).to.include({ httpOnly: true, sameSite: 'Strict', secure: true, path: '/console' });
      expect(cookie.expires).to.be.greaterThan(Date.now() / 1000);
    }

    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: `Payout ${id}` }) });
    expect(await row.textContent()).to.include('77.10 EUR');
    expect(await row.textContent()).to.include('created');
    expect(await row.textContent()).to.match(/\*+3000/);
    await page.screenshot({ path: new URL('console-payouts.png', SCREENSHOTS).pathname, fullPage: true });

    await page.getByRole('searchbox', { name: 'Find a payout by its id' }).fill(id);
    await page.getByRole('searchbox', { name: 'Find a payout by its id' }).press('Enter');
    await page.waitForURL(`**/console/payouts/${id}`);
    expect(await page.locator('h1').textContent()).to.include(id);
    expect(await page.locator('#payout-amount').textContent()).to.equal('77.10 EUR');
    const timeline = await page.locator('ol.timeline').textContent();
    expect(timeline).to.include('CREATE: — → created');
    expect(timeline).to.include(`key:`);
    expect(timeline).to.match(/request \S+/);
    const current = page.locator('svg.diagram g[aria-current="true"]');
    expect(await statesOf(current)).to.deep.equal(['created', 'created.queued']);
    expect(await current.first().textContent()).to.include('● current');
    // A client's action is open to the operator too.
    expect(await page.getByRole('button', { name: 'Cancel payout' }).count()).to.equal(1);
  });

  it('fails a stuck payout with a reason: 202 in words, then failed, and the provider record agrees', async () => {
    const id = await stuckPayout();
    const page = await signedIn();
    await page.getByRole('link', { name: 'Needs attention' }).click();
    await page.waitForURL('**/console/attention');
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: `Payout ${id}` }) });
    expect(await row.textContent()).to.include('delivery_limit');
    await row.getByRole('link').click();
    await page.waitForURL(`**/console/payouts/${id}`);
    const states = await statesOf(page.locator('svg.diagram g[aria-current="true"]'));
    expect(states).to.deep.equal(['processing', 'processing.needs_attention']);
    await page.screenshot({ path: new URL('console-payout.png', SCREENSHOTS).pathname, fullPage: true });

    await page
      .getByLabel('Reason (recorded in the history)')
      .nth(await actionIndex(page, 'Fail'))
      .fill('Beneficiary bank closed the account');
    const [answer] = await Promise.all([
      page.waitForResponse((response) => response.url().endsWith(`/console/payouts/${id}/actions`)),
      page.getByRole('button', { name: 'Fail payout' }).click(),
    ]);
    expect(answer.status()).to.equal(202);
    expect(await page.getByRole('status').textContent()).to.include(
      'Requested (202 Accepted): the worker will carry it out against the provider.',
    );

    await harness.startRelay();
    await harness.startWorker();
    await waitForStatus(api.ctx, acme.operator, id, 'failed');
    const transfers = await db('provider_transfers').where({ payout_id: id }).select('result');
    expect(transfers).to.deep.equal([{ result: 'failed' }]);

    await page.goto(`/console/payouts/${id}`);
    expect(await page.locator('#payout-status').textContent()).to.include('failed');
    const timeline = await page.locator('ol.timeline').textContent();
    expect(timeline).to.include('FAIL: processing → processing');
    expect(timeline).to.include('reason: “Beneficiary bank closed the account”');
    expect(timeline).to.include('→ failed');
    expect(await page.getByRole('heading', { name: 'Actions' }).count()).to.equal(1);
    expect(await page.locator('form[action$="/actions"]').count()).to.equal(0);
  });

  it("replays a dead letter of its own client after confirming the count; other clients' letters stay hidden and queued", async () => {
    const mine = await createPayoutOverHttp(api, acme.key);
    const theirs = await createPayoutOverHttp(api, other.key);
    const publisher = new ConfirmedPublisher(harness.broker);
    try {
      for (const [payoutId, clientId] of [
        [mine, acme.clientId],
        [theirs, other.clientId],
      ] as const) {
        const message: ProcessMessage = {
          schema_version: 1,
          message_id: randomUUID(),
          payout_id: payoutId,
          client_id: clientId,
          request_id: 'e2e-dead-letter',
        };
        await publisher.publish(
          processEnvelope(
            queueDestination(harness.names.deadLetterQueue),
            message,
            { attempt: 3, waits: 0 },
            {
              'x-death-reason': 'delivery_limit',
              'x-death-detail': 'redelivered 20 times',
              'x-dead-lettered-at': new Date(Date.now() - 5 * 60_000).toISOString(),
            },
          ),
          message,
        );
      }
    } finally {
      await publisher.close();
    }
    const page = await signedIn();
    await page.getByRole('link', { name: 'Dead letters' }).click();
    await page.waitForURL('**/console/dead-letters');
    const rows = page.locator('tbody tr');
    expect(await rows.count()).to.equal(1);
    expect(await rows.first().textContent()).to.include('delivery_limit');
    expect(await rows.first().textContent()).to.include(mine);
    expect(await page.locator('main').textContent()).to.include('1 dead letter(s) of other clients');
    expect(await page.locator('main').textContent()).to.not.include(theirs);
    await page.screenshot({
      path: new URL('console-dead-letters.png', SCREENSHOTS).pathname,
      fullPage: true,
    });

    await rows
      .first()
      .getByRole('button', { name: /^Replay dead letter/ })
      .click();
    await page.waitForURL('**/console/dead-letters/preview');
    expect(await page.locator('#match-count').textContent()).to.equal('1');
    await page.getByLabel('Type 1 to replay this dead letter').fill('1');
    await page.getByRole('button', { name: 'Replay 1' }).click();
    await page.waitForURL('**/console/dead-letters/apply');
    expect(await page.getByRole('status').textContent()).to.include(
      'Replayed 1 dead letter(s) to the work queue.',
    );

    await waitFor(async () => (await queueDepth(harness.broker, harness.names.workQueue)) === 1, {
      timeoutMs: 5_000,
    });
    await waitFor(async () => (await queueDepth(harness.broker, harness.names.deadLetterQueue)) === 1, {
      timeoutMs: 5_000,
    });
    const replayed = await harness.broker.basicGet({ queue: harness.names.workQueue, noAck: true });
    expect(replayed?.headers?.['x-payout-id']).to.equal(mine);
  });

  it('signs out and is refused afterwards; a client key cannot sign in; a form without its CSRF token is refused', async () => {
    const id = await createPayoutOverHttp(api, acme.key);
    const page = await signedIn();
    await page.goto(`/console/payouts/${id}`);
    // The form as the page has it, minus its CSRF token: refused, nothing done.
    await page
      .locator('form[action$="/actions"] input[name="csrf"]')
      .first()
      .evaluate((input: { remove(): void }) => input.remove());
    await page.getByLabel('Reason (recorded in the history)').first().fill('without a token');
    const [refused] = await Promise.all([
      page.waitForResponse((response) => response.url().endsWith(`/console/payouts/${id}/actions`)),
      page.getByRole('button', { name: 'Cancel payout' }).click(),
    ]);
    expect(refused.status()).to.equal(403);
    expect(await page.getByRole('alert').textContent()).to.include('security token is missing or wrong');
    expectRefusedLoads(1);
    expect((await api.ctx.service.getPayout(acme.operator, id)).status).to.equal('created');

    await page.goto('/console/payouts');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL('**/console/sign-in?signed_out=1');
    expect(await context.cookies()).to.have.length(1); // only the new sign-in form's cookie
    await page.goto('/console/payouts');
    await page.waitForURL('**/console/sign-in');

    await signIn(page, acme.key);
    await page.waitForURL('**/console/sign-in');
    expect(await page.getByRole('alert').textContent()).to.include('Operator key required.');
    expect((await context.cookies()).map((cookie) => cookie.name)).to.not.include('payouts_console');
    expectRefusedLoads(1);
  });
});

/** The `data-state` of each element `locator` finds: the diagram's states. */
async function statesOf(locator: Locator): Promise<Array<string | null>> {
  return Promise.all((await locator.all()).map((element) => element.getAttribute('data-state')));
}

/** Which of the page's action forms is `title`'s (the reason fields share their label). */
async function actionIndex(page: Page, title: string): Promise<number> {
  const titles = await page.locator('.actions form h3').allTextContents();
  const index = titles.indexOf(title);
  if (index === -1) throw new Error(`no ${title} action on the page: ${titles.join(', ')}`);
  return index;
}
