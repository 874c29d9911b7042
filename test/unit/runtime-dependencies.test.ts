/**
 * The Node versions `package.json` promises (`engines`) are ones every production dependency supports, and the
 * contract still dereferences with the JSON Schema `$ref` resolver pinned for that (`overrides`: its 16.x
 * releases need Node ≥ 22.19, openapi-backend asks for them, and `npm ci` on Node 20 would warn EBADENGINE).
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { OpenAPIBackend } from 'openapi-backend';
import semver from 'semver';
import { loadSpec } from '../../src/http/spec.js';

interface LockedPackage {
  version?: string;
  dev?: boolean;
  engines?: { node?: string } | string[];
}

const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as {
  packages: Record<string, LockedPackage>;
};

describe('runtime dependencies and the Node versions package.json promises', () => {
  const oldest = semver.minVersion(manifest.engines.node);

  it('every production dependency supports the oldest Node that engines allows', () => {
    expect(oldest, `engines.node ${manifest.engines.node}`).to.not.equal(null);
    const refusing = Object.entries(lock.packages)
      .filter(([path, locked]) => path !== '' && locked.dev !== true)
      .flatMap(([path, locked]) => {
        const range = Array.isArray(locked.engines) ? undefined : locked.engines?.node;
        return range && !semver.satisfies(oldest!, range) ? [`${path}@${locked.version}: ${range}`] : [];
      });
    expect(refusing, `these refuse Node ${oldest!.version}`).to.deep.equal([]);
  });

  it('dereferences the contract: no $ref left, a shared schema resolved where it is used', async () => {
    const api = new OpenAPIBackend({ definition: loadSpec().document(), strict: true, quick: true });
    await api.init();
    const text = JSON.stringify(api.definition);
    expect(text).to.not.include('"$ref"');
    const create = api.getOperation('createPayout');
    const body = create?.requestBody as { content: Record<string, { schema: { properties?: object } }> };
    expect(Object.keys(body.content['application/json']!.schema.properties ?? {})).to.include('amount');
  });
});
