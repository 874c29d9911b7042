/**
 * The client package installs and works as a consumer gets it: built from client/, packed with `npm pack`, the
 * tarball installed into an empty project outside the repository (so nothing resolves through this project's
 * node_modules or sources), where a consumer importing `@payouts/client` must type-check, strict, and run.
 *
 * The consumer constructs the client with a fetch that answers from memory (no server is needed): a typed
 * `createPayout` and `getPayout` go through openapi-fetch and the package's own headers, an error response comes
 * back as `PayoutsApiError`, and a recipient of the schema's name instead of its wire value must not compile.
 * The tarball may hold only `package.json`, a README and `dist/` (.js and .d.ts): no sources, no tests.
 *
 * CI installs only the root's dependencies, so this installs client/'s own (`npm ci`, which also builds it
 * through its `prepare` script). openapi-fetch comes from the registry or npm's cache.
 *
 *   make client-pack
 *   node --import tsx scripts/client-pack.ts [--keep]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGE = join(ROOT, 'client');
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc');
const NPM_QUIET = ['--no-audit', '--no-fund', '--loglevel=error'];

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'nodenext',
    moduleResolution: 'nodenext',
    lib: ['ES2022', 'DOM', 'DOM.Iterable'],
    types: [],
    strict: true,
    outDir: 'out',
    // Off on purpose: the package's .d.ts files are part of what is checked.
    skipLibCheck: false,
  },
  include: ['consumer.ts'],
};

/** What a consumer of the package writes; every failure throws, so the process exits non-zero. */
const CONSUMER = `import { PayoutsApiError, createPayoutsClient } from '@payouts/client';
import type { CreatePayoutRequest, Payout, PayoutsClient } from '@payouts/client';

const payout: Payout = {
  id: '0b7c5e0e-4a8f-4d36-9d65-3c1a2f9b8e11',
  amount: '12.50',
  currency: 'EUR',
  recipient: { type: 'iban', iban_last4: '3000', iban_masked: '******************3000', bic: null, holder_name: 'Jane' },
  status: 'created',
  stage: 'queued',
  available_actions: ['cancel'],
  description: null,
  failure: null,
  last_error: null,
  created_at: '2026-01-01T00:00:00.000Z',
  updated_at: '2026-01-01T00:00:00.000Z',
  version: 1,
};

const seen: Request[] = [];
async function fakeFetch(request: Request): Promise<Response> {
  seen.push(request);
  if (request.url.endsWith('/missing')) {
    const problem = { type: 'about:blank', title: 'Not Found', status: 404, detail: 'No such payout.', code: 'payout_not_found' };
    return new Response(JSON.stringify(problem), { status: 404, headers: { 'content-type': 'application/problem+json', 'x-request-id': 'r-404' } });
  }
  return new Response(JSON.stringify(payout), { status: request.method === 'POST' ? 201 : 200, headers: { 'content-type': 'application/json' } });
}

const client: PayoutsClient = createPayoutsClient({ baseUrl: 'http://payouts.invalid', apiKey: 'pk_live_example', fetch: fakeFetch });

const body: CreatePayoutRequest = {
  amount: '12.50',
  currency: 'EUR',
  recipient: { type: 'iban', iban: 'DE89370400440532013000', holder_name: 'Jane' },
};

export async function schemaNameIsNotTheType(): Promise<void> {
  await client.createPayout({
    ...body,
    recipient: {
      // @ts-expect-error the wire value is 'iban', not the schema's name
      type: 'IbanRecipientInput',
      iban: 'DE89370400440532013000',
      holder_name: 'Jane',
    },
  });
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error('consumer: ' + what);
}

const created = await client.createPayout(body, { idempotencyKey: 'key-1', requestId: 'r-1' });
const status: string = created.status;
check(status === 'created', 'createPayout returns the payout');
const post = seen[0]!;
check(post.method === 'POST' && post.url === 'http://payouts.invalid/api/payouts', 'POST /api/payouts');
check(post.headers.get('authorization') === 'Bearer pk_live_example', 'the bearer key is sent');
check(post.headers.get('idempotency-key') === 'key-1', 'the Idempotency-Key is sent');
check(post.headers.get('x-request-id') === 'r-1', 'the X-Request-Id is sent');

const read = await client.getPayout(created.id);
check(read.id === payout.id, 'getPayout returns the payout');

const failure = await client.getPayout('missing').then(
  () => undefined,
  (error: unknown) => error,
);
check(failure instanceof PayoutsApiError, 'an error response is thrown as a PayoutsApiError');
const apiError = failure as PayoutsApiError;
check(apiError.status === 404 && apiError.code === 'payout_not_found', 'the problem document is kept');
check(apiError.requestId === 'r-404', 'the request id is kept');
console.log('consumer ok');
`;

function run(step: string, command: string, args: string[], cwd: string): string {
  try {
    return execFileSync(command, args, { cwd, stdio: 'pipe', encoding: 'utf8' });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`✗ ${step}\n${stdout}${stderr}`, { cause: error });
  }
}

/** The files a consumer gets: anything else in the tarball is a mistake in `files`. */
function checkContents(files: string[]): void {
  const unexpected = files.filter(
    (file) =>
      !(file === 'package.json' || /^README(\.md)?$/i.test(file) || /^dist\/.+\.(js|d\.ts)$/.test(file)),
  );
  const missing = ['dist/index.js', 'dist/index.d.ts', 'dist/schema.d.ts'].filter((f) => !files.includes(f));
  if (unexpected.length > 0 || missing.length > 0) {
    throw new Error(
      `✗ the tarball's files${unexpected.length ? `; unexpected: ${unexpected.join(', ')}` : ''}` +
        `${missing.length ? `; missing: ${missing.join(', ')}` : ''}`,
    );
  }
}

function main(): number {
  const { values } = parseArgs({ options: { keep: { type: 'boolean', default: false } } });
  const manifest = JSON.parse(readFileSync(join(PACKAGE, 'package.json'), 'utf8')) as { name: string };
  const dir = mkdtempSync(join(tmpdir(), 'client-pack-'));
  try {
    run('npm ci in client/ (builds the package)', 'npm', ['ci', ...NPM_QUIET], PACKAGE);
    const packed = JSON.parse(
      run('npm pack', 'npm', ['pack', '--json', '--pack-destination', dir, '--loglevel=error'], PACKAGE),
    ) as { filename: string; files: { path: string }[] }[];
    const tarball = join(dir, packed[0]!.filename);
    checkContents(packed[0]!.files.map((file) => file.path));

    const project = join(dir, 'consumer');
    run('scratch project', 'mkdir', [project], dir);
    writeFileSync(join(project, 'package.json'), '{ "private": true, "type": "module" }\n');
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
    writeFileSync(join(project, 'consumer.ts'), CONSUMER);
    // --prefer-offline: openapi-fetch from npm's cache when it is there, from the registry otherwise.
    run('npm install <tarball>', 'npm', ['install', '--prefer-offline', ...NPM_QUIET, tarball], project);
    run(`tsc: a consumer of ${manifest.name}`, TSC, ['-p', project], project);
    run('node: the consumer runs', process.execPath, [join(project, 'out', 'consumer.js')], project);
    console.log(
      `client package packs, installs and works: ${packed[0]!.filename} (${packed[0]!.files.length} files)`,
    );
    return 0;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 1;
  } finally {
    if (values.keep) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = main();
