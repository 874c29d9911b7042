/**
 * Documentation pages, served by the app with their own assets (no CDN, so they work offline and leak no
 * visitor to a third party): Swagger UI at `/api/docs/` and Redoc at `/api/docs/redoc/`, both reading the
 * contract from `/api/openapi.json`.
 */
import { createRequire } from 'node:module';
import type { Request, RequestHandler, Response } from 'express';
import { Router } from 'express';
import swaggerUi from 'swagger-ui-express';

const SPEC_URL = '/api/openapi.json';
const REDOC_BUNDLE = createRequire(import.meta.url).resolve('redoc/bundles/redoc.standalone.js');

const REDOC_PAGE = `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Payouts API — Redoc</title>
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

  const assets = Router();
  // The pages themselves are operations of the contract; only files are served here (express.static would
  // answer `/api/docs` with its own HTML redirect).
  assets.use((req, _res, next) => next(req.path === '/' ? 'router' : undefined));
  assets.get('/redoc/redoc.standalone.js', (_req, res) => res.sendFile(REDOC_BUNDLE));
  // serveFiles keeps its own init script per app instead of swagger-ui-express's module-wide one.
  assets.use(swaggerUi.serveFiles(undefined, swaggerOptions));

  return {
    assets,
    swaggerUi: (req, res) => withTrailingSlash(req, res, () => swaggerPage(req, res)),
    redoc: (req, res) => withTrailingSlash(req, res, () => res.type('html').send(REDOC_PAGE)),
  };
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
