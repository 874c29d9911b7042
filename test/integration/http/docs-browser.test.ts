/**
 * The documentation pages as a person gets them: their security headers (a Content-Security-Policy that forbids
 * framing and inline script, a Referrer-Policy), and both pages rendered by a real browser — Debian's Chromium,
 * driven by playwright-core — with no CSP violation and no page error. The header checks need no browser; the
 * browser checks are skipped, with a message saying so, only where /usr/bin/chromium is missing (CI installs it:
 * .ci/run).
 */
import { existsSync } from 'node:fs';
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { useTestApi } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
const TITLE = 'Payouts API';

/** The page, or asset, paths and whether a response is a page (HTML) or a file it loads. */
const DOCS: Array<{ path: string; page: boolean }> = [
  { path: '/api/docs/', page: true },
  { path: '/api/docs/redoc/', page: true },
  { path: '/api/docs/swagger-ui-init.js', page: false },
  { path: '/api/docs/swagger-ui-bundle.js', page: false },
  { path: '/api/docs/swagger-ui.css', page: false },
  { path: '/api/docs/redoc/redoc.standalone.js', page: false },
];

/** `default-src 'none'; img-src 'self' data:` → { 'default-src': ["'none'"], 'img-src': ["'self'", 'data:'] } */
function parseCsp(header: string): Record<string, string[]> {
  const directives: Record<string, string[]> = {};
  for (const part of header.split(';')) {
    const [name, ...values] = part.trim().split(/\s+/);
    if (name) directives[name.toLowerCase()] = values;
  }
  return directives;
}

describe('docs pages: security headers', () => {
  const api = useTestApi(2);

  for (const { path, page } of DOCS) {
    it(`${path} sends a CSP with frame-ancestors 'none' and Referrer-Policy: no-referrer`, async () => {
      const response = await api.raw('GET', path);
      expect(response.status, response.text.slice(0, 200)).to.equal(200);
      const header = response.headers.get('content-security-policy');
      expect(header, `${path}: Content-Security-Policy`).to.be.a('string');
      const csp = parseCsp(header!);
      expect(csp['frame-ancestors'], header!).to.deep.equal(["'none'"]);
      expect(csp['object-src'] ?? csp['default-src'], header!).to.deep.equal(["'none'"]);
      expect(response.headers.get('referrer-policy'), `${path}: Referrer-Policy`).to.equal('no-referrer');
      expect(response.headers.get('x-content-type-options')).to.equal('nosniff');
      if (!page) return;
      expect(csp['default-src'], header!).to.deep.equal(["'none'"]);
      expect(csp['base-uri'], header!).to.deep.equal(["'none'"]);
      // Scripts only from the app itself (or hashed): no inline script, no eval, no other host.
      const scripts = csp['script-src'] ?? [];
      expect(scripts, header!).to.include("'self'");
      for (const source of scripts) {
        expect(source, header!).to.match(/^('self'|'sha256-[A-Za-z0-9+/]+=*')$/);
      }
    });
  }

  it('the redirects to the pages carry the same headers', async () => {
    for (const path of ['/api/docs', '/api/docs/redoc']) {
      const response = await api.raw('GET', path);
      expect(response.status, path).to.equal(301);
      expect(
        parseCsp(response.headers.get('content-security-policy') ?? '')['frame-ancestors'],
      ).to.deep.equal(["'none'"]);
      expect(response.headers.get('referrer-policy'), path).to.equal('no-referrer');
    }
  });
});

interface Violation {
  directive: string;
  blocked: string;
  source: string;
  sample: string;
}

/** What a page did wrong while loading: CSP violations, console errors, uncaught errors, failed requests. */
interface Trouble {
  violations: Violation[];
  consoleErrors: string[];
  pageErrors: string[];
  failedRequests: string[];
  /** Requests to any other origin than the API's (a CDN, fonts, a logo): the docs must tell no third party. */
  elsewhere: string[];
}

(HAS_CHROMIUM ? describe : describe.skip)(
  HAS_CHROMIUM
    ? 'docs pages in Chromium'
    : `docs pages in Chromium — SKIPPED: ${CHROMIUM} not found (apt-get install chromium)`,
  function () {
    this.timeout(60_000);
    const api = useTestApi(2);
    let browser: Browser;
    let context: BrowserContext;

    before(async () => {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      });
    });
    after(async () => {
      await browser?.close();
    });
    beforeEach(async () => {
      context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    });
    afterEach(async () => {
      await context?.close();
    });

    /** Opens `path` with every violation, console error, page error and failed request recorded. */
    async function open(path: string): Promise<{ page: Page; trouble: Trouble }> {
      const trouble: Trouble = {
        violations: [],
        consoleErrors: [],
        pageErrors: [],
        failedRequests: [],
        elsewhere: [],
      };
      const page = await context.newPage();
      await page.exposeBinding('__reportCspViolation', (_source, violation: Violation) => {
        trouble.violations.push(violation);
      });
      // Runs before the page's own scripts, in every document; the binding survives navigations. A string, not
      // a function: tsx compiles functions with helpers (`__name`) that do not exist in the page.
      await page.addInitScript(`
        document.addEventListener('securitypolicyviolation', (event) =>
          window.__reportCspViolation({
            directive: event.effectiveDirective,
            blocked: event.blockedURI,
            source: event.sourceFile + ':' + event.lineNumber,
            sample: event.sample,
          }),
        );
      `);
      page.on('console', (message) => {
        if (message.type() === 'error')
          trouble.consoleErrors.push(`${message.text()} (${message.location().url})`);
      });
      page.on('pageerror', (error) => trouble.pageErrors.push(error.message));
      page.on('request', (request) => {
        const url = request.url();
        if (!url.startsWith(`${api.baseUrl}/`) && !/^(data|blob):/.test(url)) trouble.elsewhere.push(url);
      });
      page.on('response', (response) => {
        if (response.status() >= 400) trouble.failedRequests.push(`${response.url()}: ${response.status()}`);
      });
      page.on('requestfailed', (request) =>
        trouble.failedRequests.push(`${request.url()}: ${request.failure()?.errorText ?? 'failed'}`),
      );
      const response = await page.goto(`${api.baseUrl}${path}`, { waitUntil: 'load' });
      expect(response?.status(), path).to.equal(200);
      return { page, trouble };
    }

    /** Lets late work (workers, lazy chunks, images) happen, then asserts nothing went wrong. */
    async function expectNoTrouble(page: Page, trouble: Trouble): Promise<void> {
      await page.waitForLoadState('networkidle');
      await page.waitForTimeout(500);
      expect(trouble.violations, 'CSP violations').to.deep.equal([]);
      // Chromium also reports violations on the console ("Refused to ..."), and a page's failing fetches there.
      expect(trouble.consoleErrors, 'console errors').to.deep.equal([]);
      expect(trouble.pageErrors, 'uncaught page errors').to.deep.equal([]);
      expect(trouble.failedRequests, 'failed requests').to.deep.equal([]);
      expect(trouble.elsewhere, 'requests to other origins').to.deep.equal([]);
    }

    it('Swagger UI renders the contract with no CSP violation', async () => {
      const { page, trouble } = await open('/api/docs/');
      await page.locator('.swagger-ui .info .title').waitFor({ timeout: 20_000 });
      expect(await page.locator('.swagger-ui .info .title').innerText()).to.include(TITLE);
      await page.locator('.swagger-ui .opblock').first().waitFor({ timeout: 20_000 });
      expect(await page.locator('.swagger-ui .opblock').count()).to.be.greaterThan(5);
      // Opening an operation renders its parameters and schemas (more styles, more icons).
      await page.locator('.swagger-ui .opblock-summary').first().click();
      await page.locator('.swagger-ui .opblock-body').first().waitFor({ timeout: 10_000 });
      await expectNoTrouble(page, trouble);
    });

    it('Redoc renders the contract with no CSP violation', async () => {
      const { page, trouble } = await open('/api/docs/redoc/');
      await page.locator('.api-info h1').waitFor({ timeout: 30_000 });
      expect(await page.locator('.api-info h1').innerText()).to.include(TITLE);
      await page.locator('[role="menuitem"]').first().waitFor({ timeout: 10_000 });
      expect(await page.locator('[role="menuitem"]').count()).to.be.greaterThan(5);
      // The search index lives in a blob: worker; a term with results shows they came back from it.
      await page.locator('[role="search"] input').fill('payout');
      await page
        .locator('ul[data-role="search:results"] [role="menuitem"]')
        .first()
        .waitFor({ timeout: 10_000 });
      await expectNoTrouble(page, trouble);
    });
  },
);
