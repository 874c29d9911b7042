/**
 * Generated clients work as generated: clients made from the client-facing contract (scripts/public-spec.ts) by
 * two generators, each used the way its README shows, must type-check, strict, with no casts.
 *
 *   (a) openapi-typescript + openapi-fetch: `createClient<paths>`, `POST /api/payouts`, `GET /api/payouts/{id}`;
 *   (b) @hey-api/openapi-ts with its fetch client: the generated `createPayout` and `getPayout`.
 *
 * Both create an `iban` payout and read its `status`, and must refuse a recipient of type `IbanRecipientInput`
 * (the schema's name, which a generator puts there when a discriminator has no `mapping`). Neither SDK may
 * have an operation the public spec leaves out (`getHealth`, `getSwaggerUi`, …).
 *
 * Everything happens in a temporary folder outside the repository (its `node_modules` a link to the project's),
 * removed at the end; `--keep` leaves it for a look.
 *
 *   make generated-clients-check
 *   node --import tsx scripts/generated-clients-check.ts [--spec openapi.yaml] [--keep]
 */
import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { publicSpec } from './public-spec.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'node_modules', '.bin');

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'nodenext',
    moduleResolution: 'nodenext',
    lib: ['ES2022', 'DOM', 'DOM.Iterable'],
    types: [],
    strict: true,
    noEmit: true,
    skipLibCheck: true,
  },
  include: ['*.ts', 'openapi-typescript/**/*.ts', 'hey-api/**/*.ts'],
};

/** openapi-fetch's README: `createClient<paths>({ baseUrl })`, then `client.POST` / `client.GET`. */
const OPENAPI_FETCH = `import createClient from 'openapi-fetch';
import type { paths } from './openapi-typescript/schema.js';

const client = createClient<paths>({ baseUrl: 'http://127.0.0.1:8000' });

export async function createAndRead(): Promise<string> {
  const created = await client.POST('/api/payouts', {
    body: {
      amount: '12.50',
      currency: 'EUR',
      recipient: { type: 'iban', iban: 'DE89370400440532013000', holder_name: 'Jane' },
    },
    params: { header: { 'Idempotency-Key': 'k' } },
  });
  if (created.error) throw new Error(created.error.detail);
  const id = created.data.id;

  const { data, error } = await client.GET('/api/payouts/{id}', { params: { path: { id } } });
  if (error) throw new Error(error.detail);
  return data.status;
}

export async function schemaNameIsNotTheType(): Promise<void> {
  await client.POST('/api/payouts', {
    body: {
      amount: '12.50',
      currency: 'EUR',
      recipient: {
        // @ts-expect-error the wire value is 'iban', not the schema's name
        type: 'IbanRecipientInput',
        iban: 'DE89370400440532013000',
        holder_name: 'Jane',
      },
    },
  });
}
`;

/** @hey-api/openapi-ts's README: configure the generated \`client\`, call the generated functions. */
const HEY_API = `import { client } from './hey-api/client.gen.js';
import { createPayout, getPayout } from './hey-api/sdk.gen.js';

client.setConfig({ baseUrl: 'http://127.0.0.1:8000', auth: () => 'pk_live_example' });

export async function createAndRead(): Promise<string> {
  const created = await createPayout({
    body: {
      amount: '12.50',
      currency: 'EUR',
      recipient: { type: 'iban', iban: 'DE89370400440532013000', holder_name: 'Jane' },
    },
    headers: { 'Idempotency-Key': 'k' },
  });
  if (created.error) throw new Error(created.error.detail);
  const id = created.data.id;

  const { data, error } = await getPayout({ path: { id } });
  if (error) throw new Error(error.detail);
  return data.status;
}

export async function schemaNameIsNotTheType(): Promise<void> {
  await createPayout({
    body: {
      amount: '12.50',
      currency: 'EUR',
      recipient: {
        // @ts-expect-error the wire value is 'iban', not the schema's name
        type: 'IbanRecipientInput',
        iban: 'DE89370400440532013000',
        holder_name: 'Jane',
      },
    },
  });
}
`;

/** No SDK has an operation the public spec leaves out: a leak fails with its name. */
function surface(internal: string[]): string {
  const union = internal.length === 0 ? 'never' : internal.map((id) => JSON.stringify(id)).join(' | ');
  return `import type * as sdk from './hey-api/sdk.gen.js';
import type { operations } from './openapi-typescript/schema.js';

type Internal = ${union};
type Leaked<T> = Extract<keyof T, Internal>;

export const heyApiLeaks: [Leaked<typeof sdk>] extends [never] ? 'none' : Leaked<typeof sdk> = 'none';
export const openapiTypescriptLeaks: [Leaked<operations>] extends [never] ? 'none' : Leaked<operations> = 'none';
`;
}

function run(step: string, command: string, args: string[], cwd: string): boolean {
  try {
    execFileSync(command, args, { cwd, stdio: 'pipe', encoding: 'utf8' });
    return true;
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    process.stderr.write(`✗ ${step}\n${stdout}${stderr}`);
    return false;
  }
}

function main(): number {
  const { values } = parseArgs({
    options: {
      spec: { type: 'string', default: join(ROOT, 'openapi.yaml') },
      keep: { type: 'boolean', default: false },
    },
  });
  const source = YAML.parse(readFileSync(resolve(values.spec), 'utf8')) as Record<string, unknown>;
  const { document, dropped } = publicSpec(source);

  const dir = mkdtempSync(join(tmpdir(), 'generated-clients-check-'));
  const modules = join(dir, 'node_modules');
  try {
    const spec = join(dir, 'public-spec.json');
    writeFileSync(spec, JSON.stringify(document, null, 2));
    symlinkSync(join(ROOT, 'node_modules'), modules, 'dir');
    writeFileSync(join(dir, 'package.json'), '{ "private": true, "type": "module" }\n');
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
    mkdirSync(join(dir, 'openapi-typescript'));
    writeFileSync(join(dir, 'openapi-fetch.ts'), OPENAPI_FETCH);
    writeFileSync(join(dir, 'hey-api.ts'), HEY_API);
    writeFileSync(join(dir, 'sdk-surface.ts'), surface(dropped));

    const generated =
      run(
        'openapi-typescript',
        join(BIN, 'openapi-typescript'),
        [spec, '-o', join(dir, 'openapi-typescript', 'schema.d.ts')],
        dir,
      ) &&
      run(
        '@hey-api/openapi-ts',
        join(BIN, 'openapi-ts'),
        ['-i', spec, '-o', join(dir, 'hey-api'), '-c', '@hey-api/client-fetch', '--no-log-file', '-s'],
        dir,
      );
    if (!generated) return 1;
    if (!run('tsc: the generated clients used as their READMEs show', join(BIN, 'tsc'), ['-p', dir], dir)) {
      process.stderr.write(
        'A generated client does not type-check as its README uses it (a discriminator without a mapping?).\n',
      );
      return 1;
    }
    console.log(
      `generated clients type-check: openapi-typescript + openapi-fetch, @hey-api/openapi-ts (left out: ${dropped.join(', ') || 'nothing'})`,
    );
    return 0;
  } finally {
    if (values.keep) {
      console.log(`kept ${dir}`);
    } else {
      // The link first, so removing the folder can never reach into the project's node_modules.
      try {
        unlinkSync(modules);
      } catch {
        // not made yet
      }
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

process.exitCode = main();
