import { expect } from 'chai';
import { Batcher } from '../../src/persistence/batcher.js';

/** A batch function that records every batch it was given and answers each item doubled. */
function recorder(fail?: (items: number[]) => Error | undefined) {
  const batches: number[][] = [];
  const run = (items: number[]) => {
    batches.push([...items]);
    const error = fail?.(items);
    return error ? Promise.reject(error) : Promise.resolve(items.map((item) => item * 2));
  };
  return { batches, run };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A batcher keyed by the last digit whose first statement runs until `finishFirst` is called; every later
 * statement answers at once. Each item is answered with itself.
 */
function firstStatementHeld() {
  const started: number[][] = [];
  let release: (() => void) | undefined;
  const batcher = new Batcher(
    (items: number[]) => {
      started.push([...items]);
      if (started.length > 1) return Promise.resolve(items);
      return new Promise<number[]>((resolve) => (release = () => resolve(items)));
    },
    { maxBatch: 10, keyOf: (item) => String(item % 10) },
  );
  return { started, batcher, finishFirst: () => release!() };
}

describe('Batcher', () => {
  it('sends the calls of one turn as one batch and answers each caller with its own result', async () => {
    const { batches, run } = recorder();
    const batcher = new Batcher(run, { maxBatch: 10 });
    const results = await Promise.all([1, 2, 3].map((item) => batcher.run(item)));
    expect(results).to.deep.equal([2, 4, 6]);
    expect(batches).to.deep.equal([[1, 2, 3]]);
  });

  it('sends calls of later turns in later batches', async () => {
    const { batches, run } = recorder();
    const batcher = new Batcher(run, { maxBatch: 10 });
    expect(await batcher.run(1)).to.equal(2);
    expect(await batcher.run(2)).to.equal(4);
    expect(batches).to.deep.equal([[1], [2]]);
  });

  it('splits at maxBatch', async () => {
    const { batches, run } = recorder();
    const batcher = new Batcher(run, { maxBatch: 2 });
    await Promise.all([1, 2, 3, 4, 5].map((item) => batcher.run(item)));
    expect(batches).to.deep.equal([[1, 2], [3, 4], [5]]);
  });

  it('never puts two items with the same key in one batch', async () => {
    const { batches, run } = recorder();
    const batcher = new Batcher(run, { maxBatch: 10, keyOf: (item) => String(item % 3) });
    const results = await Promise.all([1, 4, 2, 7].map((item) => batcher.run(item)));
    expect(results).to.deep.equal([2, 8, 4, 14]);
    expect(batches).to.deep.equal([[1, 2], [4], [7]]);
  });

  it('holds an item back until the statement with the same key has settled', async () => {
    const { started, batcher, finishFirst } = firstStatementHeld();
    const results = Promise.all([1, 11, 2].map((item) => batcher.run(item)));
    await pause(20);
    expect(started).to.deep.equal([[1, 2]]);
    finishFirst();
    expect(await results).to.deep.equal([1, 11, 2]);
    expect(started).to.deep.equal([[1, 2], [11]]);
  });

  it('holds back an item of a later turn whose key is still in a statement', async () => {
    const { started, batcher, finishFirst } = firstStatementHeld();
    const first = batcher.run(1);
    await pause(10);
    const later = Promise.all([11, 2].map((item) => batcher.run(item)));
    await pause(20);
    expect(started).to.deep.equal([[1], [2]]);
    finishFirst();
    expect(await first).to.equal(1);
    expect(await later).to.deep.equal([11, 2]);
    expect(started).to.deep.equal([[1], [2], [11]]);
  });

  it('sends the items of a failed batch again one by one: only the bad item fails', async () => {
    const { batches, run } = recorder((items) =>
      items.includes(13) ? new Error('check violated') : undefined,
    );
    const batcher = new Batcher(run, { maxBatch: 10 });
    const settled = await Promise.allSettled([1, 13, 3].map((item) => batcher.run(item)));
    expect(settled.map((outcome) => outcome.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason).to.have.property('message', 'check violated');
    expect(batches).to.deep.equal([[1, 13, 3], [1], [13], [3]]);
  });

  it('fails every item at once when the database is away, without sending them again', async () => {
    const away = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const { batches, run } = recorder(() => away);
    const batcher = new Batcher(run, { maxBatch: 10 });
    const settled = await Promise.allSettled([1, 2, 3].map((item) => batcher.run(item)));
    expect(settled.every((outcome) => outcome.status === 'rejected' && outcome.reason === away)).to.equal(
      true,
    );
    expect(batches).to.deep.equal([[1, 2, 3]]);
  });

  it('with maxStatements, the items arriving while every statement runs wait and go together in the next', async () => {
    const started: number[][] = [];
    const releases: Array<() => void> = [];
    const batcher = new Batcher(
      (items: number[]) => {
        started.push([...items]);
        return new Promise<number[]>((resolve) => releases.push(() => resolve(items)));
      },
      { maxStatements: 1 },
    );
    const first = batcher.run(1);
    await pause(5);
    const later = [2, 3, 4].map((item) => batcher.run(item));
    await pause(5);
    const last = batcher.run(5);
    await pause(5);
    expect(started).to.deep.equal([[1]]);
    releases[0]!();
    expect(await first).to.equal(1);
    await pause(5);
    expect(started).to.deep.equal([[1], [2, 3, 4, 5]]);
    releases[1]!();
    expect(await Promise.all([...later, last])).to.deep.equal([2, 3, 4, 5]);
  });
});
