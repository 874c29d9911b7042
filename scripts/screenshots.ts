/**
 * `make screenshots`: pictures of the API docs for the README, taken with headless Chromium (Debian's
 * `chromium` package) from a running instance. It starts nothing: run the API first (`make run`, `make dev`
 * or `make up`), then
 *
 *   node --import tsx scripts/screenshots.ts              # the API at http://127.0.0.1:8000
 *   API_URL=https://payouts.example.com make screenshots  # any other instance
 *
 * Writes docs/screenshots/swagger-ui.png and docs/screenshots/redoc.png. Each page is first rendered to
 * its DOM and checked for the spec's title, so a blank or half-loaded page fails instead of being saved.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';

const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'docs', 'screenshots');
const API_URL = (process.env.API_URL ?? 'http://127.0.0.1:8000').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM ?? 'chromium';
const WINDOW = process.env.SCREENSHOT_WINDOW ?? '1280,1600';

interface Page {
  name: string;
  path: string;
  file: string;
  /** Virtual time Chromium grants the page's scripts to fetch the spec and render it, in ms. */
  budgetMs: number;
}

const PAGES: Page[] = [
  { name: 'Swagger UI', path: '/api/docs/', file: 'swagger-ui.png', budgetMs: 10_000 },
  { name: 'Redoc', path: '/api/docs/redoc/', file: 'redoc.png', budgetMs: 20_000 },
];

function chromiumArgs(profile: string, budgetMs: number): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-extensions',
    '--no-first-run',
    '--no-default-browser-check',
    '--hide-scrollbars',
    '--mute-audio',
    `--user-data-dir=${profile}`,
    `--window-size=${WINDOW}`,
    `--virtual-time-budget=${budgetMs}`,
  ];
}

async function chromium(args: string[]): Promise<string> {
  try {
    const { stdout } = await run(CHROMIUM, args, { timeout: 90_000, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
    if (failure.code === 'ENOENT') {
      throw new Error(
        `${CHROMIUM} not found: install Debian's chromium (apt-get install chromium) or set CHROMIUM`,
        {
          cause: error,
        },
      );
    }
    throw new Error(`${CHROMIUM} failed: ${failure.message}\n${failure.stderr ?? ''}`.trim(), {
      cause: error,
    });
  }
}

/** The title the docs pages show: info.title of openapi.yaml. */
function specTitle(): string {
  const spec = parseYaml(readFileSync(join(ROOT, 'openapi.yaml'), 'utf8')) as { info?: { title?: string } };
  const title = spec.info?.title;
  if (!title) throw new Error('openapi.yaml has no info.title');
  return title;
}

async function ensureApiIsUp(): Promise<void> {
  const url = `${API_URL}/api/openapi.json`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
  } catch (error) {
    throw new Error(
      `no API answers ${url} (${(error as Error).message}). Start one first (make run, make dev or make up), ` +
        'or point API_URL at a running instance.',
      { cause: error },
    );
  }
}

async function screenshot(page: Page, title: string): Promise<string> {
  const url = `${API_URL}${page.path}`;
  const file = join(OUT, page.file);
  const profile = mkdtempSync(join(tmpdir(), 'payouts-chromium-'));
  try {
    const dom = await chromium([...chromiumArgs(profile, page.budgetMs), '--dump-dom', url]);
    if (!dom.includes(title)) {
      throw new Error(
        `${page.name} at ${url} did not render the spec (no "${title}" in the page after rendering)`,
      );
    }
    rmSync(file, { force: true });
    await chromium([...chromiumArgs(profile, page.budgetMs), `--screenshot=${file}`, url]);
    const size = statSync(file, { throwIfNoEntry: false })?.size ?? 0;
    if (size < 10_000)
      throw new Error(`${page.name}: ${file} is missing or too small (${size} bytes) to be a page`);
    return `${page.name}: ${relative(ROOT, file)} (${Math.round(size / 1024)} KiB) from ${url}`;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  await ensureApiIsUp();
  const title = specTitle();
  mkdirSync(OUT, { recursive: true });
  for (const page of PAGES) process.stdout.write(`${await screenshot(page, title)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`screenshots: ${(error as Error).message}\n`);
  process.exitCode = 1;
});
