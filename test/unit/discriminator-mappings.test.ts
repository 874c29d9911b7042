/**
 * openapi.yaml's discriminators carry a `mapping` of every branch, so generated clients type the tag with its
 * wire value (`type: 'iban'`, not the schema's name); the document the app hands openapi-backend has none (its
 * ajv refuses `mapping`), while the served YAML and JSON keep them.
 */
import { expect } from 'chai';
import { Ajv } from 'ajv';
import YAML from 'yaml';
import { loadSpec, withoutDiscriminatorMappings } from '../../src/http/spec.js';

type Json = Record<string, unknown>;

/** Every schema object with a `discriminator`, by its JSON pointer. */
function discriminated(node: unknown, at = '#', into: Array<[string, Json]> = []): Array<[string, Json]> {
  if (node === null || typeof node !== 'object') return into;
  const record = node as Json;
  const discriminator = record.discriminator as Json | undefined;
  if (discriminator && typeof discriminator.propertyName === 'string') into.push([at, record]);
  for (const [key, value] of Object.entries(record)) discriminated(value, `${at}/${key}`, into);
  return into;
}

describe('discriminator mappings', () => {
  const spec = loadSpec();
  const served = YAML.parse(spec.yaml) as Json;

  it('openapi.yaml maps every branch of every discriminator, and only its branches', () => {
    const schemas = discriminated(served);
    expect(schemas, 'the contract has discriminators').to.not.be.empty;
    for (const [at, schema] of schemas) {
      const branches = ((schema.oneOf ?? schema.anyOf ?? []) as Json[]).map((branch) => branch.$ref);
      const { propertyName, mapping } = schema.discriminator as { propertyName: string; mapping?: Json };
      expect(mapping, `${at}: discriminator.mapping`).to.be.an('object');
      expect(Object.values(mapping!), `${at}: mapping targets`).to.have.members(branches);
      for (const [value, ref] of Object.entries(mapping!)) {
        const name = String(ref).split('/').pop()!;
        const branch = ((served.components as Json).schemas as Json)[name] as Json;
        const tag = (branch.properties as Json)[propertyName] as Json;
        expect(tag.enum, `${at}: ${name}.${propertyName} is the mapped value`).to.deep.equal([value]);
      }
    }
  });

  it('the document for openapi-backend has no mapping; the served texts keep the file as it is', () => {
    for (const [at, schema] of discriminated(spec.document())) {
      expect(schema.discriminator, at).to.not.have.property('mapping');
    }
    expect(JSON.parse(spec.json)).to.deep.equal(served);
    expect(discriminated(JSON.parse(spec.json)).length).to.equal(discriminated(served).length);
  });

  it('ajv compiles the document once the mappings are gone, and refuses them otherwise', () => {
    const ref = { $ref: 'openapi#/components/schemas/CreatePayoutRequest' };
    const strip = new Ajv({ strict: false, discriminator: true });
    strip.addSchema(spec.document(), 'openapi');
    expect(() => strip.compile(ref)).to.not.throw();
    const keep = new Ajv({ strict: false, discriminator: true });
    keep.addSchema(YAML.parse(spec.yaml) as object, 'openapi');
    expect(() => keep.compile(ref)).to.throw(/mapping is not supported/);
  });

  it('touches only discriminators: a property called mapping stays', () => {
    const document = {
      a: { discriminator: { propertyName: 'type', mapping: { x: '#/x' } } },
      b: { properties: { mapping: { type: 'string' }, discriminator: { type: 'object' } } },
    };
    expect(withoutDiscriminatorMappings(document)).to.deep.equal({
      a: { discriminator: { propertyName: 'type' } },
      b: { properties: { mapping: { type: 'string' }, discriminator: { type: 'object' } } },
    });
  });
});
