/**
 * `.env.example` lists every setting with its default: read as an environment, it configures exactly what an empty
 * environment does, and it names every variable src/config.ts reads.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { loadConfig } from '../../src/config.js';

const text = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');

function parse(source: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of source.split('\n')) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (match) env[match[1]!] = match[2]!;
  }
  return env;
}

describe('.env.example', () => {
  it('configures exactly the defaults', () => {
    expect(loadConfig(parse(text))).to.deep.equal(loadConfig({}));
  });

  it('names every variable the configuration reads (set or commented out)', () => {
    const source = readFileSync(new URL('../../src/config.ts', import.meta.url), 'utf8');
    const read = new Set([...source.matchAll(/\(env, '([A-Z][A-Z0-9_]*)'/g)].map((match) => match[1]!));
    const listed = new Set([...text.matchAll(/^#? ?([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1]!));
    expect(read.size).to.be.greaterThan(20);
    expect([...read].filter((key) => !listed.has(key))).to.deep.equal([]);
  });
});
