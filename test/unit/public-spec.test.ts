/**
 * scripts/public-spec.ts: the client-facing contract generators are given leaves out the operations tagged as
 * internal (health, readiness, metrics, the spec files and docs pages) and what only they used, by tag, without
 * changing the document the app serves and routes by.
 */
import { expect } from 'chai';
import YAML from 'yaml';
import { INTERNAL_TAGS, publicSpec } from '../../scripts/public-spec.js';
import { loadSpec } from '../../src/http/spec.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- OpenAPI documents

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function operationIds(document: Json): string[] {
  return Object.values(document.paths as Json).flatMap((item: Json) =>
    METHODS.filter((method) => method in item).map((method) => item[method].operationId as string),
  );
}

describe('public spec (what client generators get)', () => {
  const source = YAML.parse(loadSpec().yaml) as Json;

  it('leaves out every operation with an internal tag, and keeps every other', () => {
    const { document, dropped } = publicSpec(source);
    const internal = Object.values(source.paths as Json).flatMap((item: Json) =>
      METHODS.filter(
        (method) =>
          method in item && (item[method].tags as string[]).some((tag) => INTERNAL_TAGS.includes(tag)),
      ).map((method) => item[method].operationId as string),
    );
    expect(dropped).to.have.members(internal);
    expect(dropped).to.include.members(['getHealth', 'getOpenApiJson', 'getRedoc']);
    expect(operationIds(document)).to.have.members(
      operationIds(source).filter((id) => !internal.includes(id)),
    );
    expect(operationIds(document)).to.include.members(['createPayout', 'getPayout', 'listPayouts']);
    expect((document.tags as Json[]).map((tag) => String(tag.name))).to.not.include.members([
      ...INTERNAL_TAGS,
    ]);
  });

  it('does not change the source: the app still has every operation to route by', () => {
    const before = JSON.stringify(source);
    publicSpec(source);
    expect(JSON.stringify(source)).to.equal(before);
  });

  it('removes components only the dropped operations used, keeps shared and stand-alone ones', () => {
    const document = {
      openapi: '3.0.3',
      info: { title: 't', version: '1' },
      tags: [{ name: 'Operations' }, { name: 'Public' }],
      paths: {
        '/metrics': {
          get: {
            operationId: 'getMetrics',
            tags: ['Operations'],
            responses: {
              '200': { $ref: '#/components/responses/Only' },
              '400': { $ref: '#/components/responses/Shared' },
            },
          },
        },
        '/things': {
          get: {
            operationId: 'getThings',
            tags: ['Public'],
            responses: { '400': { $ref: '#/components/responses/Shared' } },
          },
          post: { operationId: 'hidden', 'x-internal': true, responses: {} },
        },
      },
      components: {
        responses: {
          Only: {
            description: 'x',
            content: { 'text/plain': { schema: { $ref: '#/components/schemas/Deep' } } },
          },
          Shared: { description: 'y' },
        },
        schemas: { Deep: { type: 'string' }, StandAlone: { type: 'string' } },
      },
    };
    const { document: result, dropped } = publicSpec(document);
    expect(dropped).to.have.members(['getMetrics', 'hidden']);
    expect(Object.keys(result.paths as Json)).to.deep.equal(['/things']);
    expect(Object.keys((result.paths as Json)['/things'] as Json)).to.deep.equal(['get']);
    expect(Object.keys((result.components as Json).responses as Json)).to.deep.equal(['Shared']);
    expect(Object.keys((result.components as Json).schemas as Json)).to.deep.equal(['StandAlone']);
    expect(result.tags).to.deep.equal([{ name: 'Public' }]);
  });
});
