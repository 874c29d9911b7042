/**
 * Documentation pages, served by the app with their own assets (no CDN, so they work offline and leak no
 * visitor to a third party): Swagger UI at `/api/docs/` and Redoc at `/api/docs/redoc/`, both reading the
 * contract from `/api/openapi.json`.
 *
 * Every response under `/api/docs` carries a Content-Security-Policy (nothing but the app's own files, no
 * inline script, never framed) and `Referrer-Policy: no-referrer`. Each page's policy allows what its renderer
 * needs and nothing else; `test/integration/http/docs-browser.test.ts` opens both pages in Chromium and fails on
 * any violation.
 *
 * Redoc's standalone bundle is a build artifact, not a production dependency: `make build` (npm run
 * build:redoc) copies it to `dist/assets/redoc/`, next to the compiled code; from sources (tsx, dev
 * dependencies installed) it is read from `node_modules/redoc`.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { Router } from 'express';
import swaggerUi from 'swagger-ui-express';

const SPEC_URL = '/api/openapi.json';

/** Where `make build` puts the bundle: `dist/assets/redoc/` seen from `dist/src/http/docs.js`. */
const REDOC_BUNDLE_COPY = fileURLToPath(new URL('../../assets/redoc/redoc.standalone.js', import.meta.url));

/**
 * The one request Redoc makes to another host: the Redocly logo in its sidebar's attribution, from a CDN. It
 * would tell the CDN who reads the docs, and the CSP blocks it (a violation); without a source the image fails
 * to load and Redoc leaves it out (its `onError`). The link "API docs by Redocly" stays.
 */
const REDOC_THIRD_PARTY_LOGO = 'https://cdn.redoc.ly/redoc/logo-mini.svg';

/** A Content-Security-Policy from its directives. */
function policy(directives: Record<string, string>): string {
  return Object.entries(directives)
    .map(([name, sources]) => `${name} ${sources}`)
    .join('; ');
}

/** What every docs response allows: nothing, never framed, no `<base>`, no form posting anywhere. */
const LOCKED = {
  'default-src': "'none'",
  'base-uri': "'none'",
  'form-action': "'none'",
  'frame-ancestors': "'none'",
};

/**
 * Swagger UI: its scripts and stylesheet are files of the app (the init script too: swagger-ui-init.js, no
 * inline script); the page's own `<style>` blocks, the SVG sprite's `style` attribute and the `<style>` elements
 * the bundle writes at run time are inline styles; its CSS draws icons as `data:` SVGs; it fetches the contract
 * and, with "Try it out", the API (servers: `/`).
 */
const SWAGGER_UI_CSP = policy({
  ...LOCKED,
  'script-src': "'self'",
  'style-src': "'self' 'unsafe-inline'",
  'img-src': "'self' data:",
  'connect-src': "'self'",
});

/**
 * Redoc: one script file; styled-components writes `<style>` elements at run time (inline styles); the search
 * index runs in a worker made from a `blob:` URL; its icons are `data:` images, so is the page's empty favicon
 * (no request for `/favicon.ico`); it fetches the contract.
 */
const REDOC_CSP = policy({
  ...LOCKED,
  'script-src': "'self'",
  'style-src': "'unsafe-inline'",
  'img-src': "'self' data:",
  'connect-src': "'self'",
  'worker-src': 'blob:',
});

/** Scripts, stylesheets and images: nothing runs in them, and opened on their own they may not be framed. */
const ASSET_CSP = policy(LOCKED);

const REDOC_PAGE = `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Payouts API — Redoc</title>
  <link rel="icon" href="data:,">
  <style>body { margin: 0; padding: 0; }</style>
</head>
<body>
  <redoc spec-url="${SPEC_URL}"></redoc>
  <script src="./redoc.standalone.js"></script>
</body>
</html>
`;

export interface DocsPages {
  /** Static assets under `/api/docs/`; mounted before the API router, falls through when no file matches. */
  assets: RequestHandler;
  swaggerUi(req: Request, res: Response): void;
  redoc(req: Request, res: Response): void;
}

export function docsPages(): DocsPages {
  const swaggerOptions = { swaggerUrl: SPEC_URL, customSiteTitle: 'Payouts API — Swagger UI' };
  const swaggerPage = swaggerUi.setup(undefined, swaggerOptions) as unknown as (
    req: Request,
    res: Response,
  ) => void;
  const redocBundle = lazyRedocBundle();

  const assets = Router();
  // The pages themselves are operations of the contract; only files are served here (express.static would
  // answer `/api/docs` with its own HTML redirect).
  assets.use((req, _res, next) => next(req.path === '/' ? 'router' : undefined));
  assets.use((_req, res, next) => {
    setDocsHeaders(res, ASSET_CSP);
    next();
  });
  assets.get('/redoc/redoc.standalone.js', (req, res, next) => serveBundle(redocBundle, req, res, next));
  // serveFiles keeps its own init script per app instead of swagger-ui-express's module-wide one.
  assets.use(swaggerUi.serveFiles(undefined, swaggerOptions));

  return {
    assets,
    swaggerUi: (req, res) => {
      setDocsHeaders(res, SWAGGER_UI_CSP);
      withTrailingSlash(req, res, () => swaggerPage(req, res));
    },
    redoc: (req, res) => {
      setDocsHeaders(res, REDOC_CSP);
      withTrailingSlash(req, res, () => res.type('html').send(REDOC_PAGE));
    },
  };
}

function setDocsHeaders(res: Response, csp: string): void {
  res.setHeader('Content-Security-Policy', csp);
  res.setHeader('Referrer-Policy', 'no-referrer');
}

interface Bundle {
  body: Buffer;
  etag: string;
}

/**
 * Redoc's bundle, read on first use (a docs page is rarely opened; the process does not keep 1 MB for it
 * otherwise) with the third-party logo taken out: the copy `make build` made, else the dev dependency.
 */
function lazyRedocBundle(): () => Bundle {
  let bundle: Bundle | undefined;
  return () => {
    if (bundle) return bundle;
    const source = readFileSync(locateRedocBundle(), 'utf8').replaceAll(REDOC_THIRD_PARTY_LOGO, '');
    const body = Buffer.from(source);
    bundle = { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
    return bundle;
  };
}

function locateRedocBundle(): string {
  if (existsSync(REDOC_BUNDLE_COPY)) return REDOC_BUNDLE_COPY;
  try {
    return createRequire(import.meta.url).resolve('redoc/bundles/redoc.standalone.js');
  } catch (error) {
    throw new Error(
      `Redoc's bundle is missing: no ${REDOC_BUNDLE_COPY} (make build copies it there) and no redoc dev ` +
        'dependency in node_modules',
      { cause: error },
    );
  }
}

function serveBundle(bundle: () => Bundle, req: Request, res: Response, next: NextFunction): void {
  let loaded: Bundle;
  try {
    loaded = bundle();
  } catch (error) {
    next(error);
    return;
  }
  res.setHeader('ETag', loaded.etag);
  res.setHeader('Cache-Control', 'public, max-age=0, must-revalidate');
  if (req.fresh) {
    res.status(304).end();
    return;
  }
  res.type('js').send(loaded.body);
}

/** The pages load their assets by relative URL, so they must be served from the path with the slash. */
function withTrailingSlash(req: Request, res: Response, serve: () => void): void {
  if (req.path.endsWith('/')) {
    serve();
    return;
  }
  const query = req.originalUrl.slice(
    req.originalUrl.indexOf('?') === -1 ? req.originalUrl.length : req.originalUrl.indexOf('?'),
  );
  res.status(301).location(`${req.path}/${query}`).end();
}
