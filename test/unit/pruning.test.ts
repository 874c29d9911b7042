import { expect } from 'chai';
import { pruneInBatches } from '../../src/persistence/pruning.js';

/** A table of `rows` expired rows, deleted `limit` at a time; each batch takes `msPerBatch` on a fake clock. */
function table(rows: number, msPerBatch = 10) {
  let left = rows;
  let now = 0;
  const batches: number[] = [];
  return {
    batches,
    clock: () => now,
    deleteBatch: (limit: number) => {
      const deleted = Math.min(limit, left);
      left -= deleted;
      now += msPerBatch;
      batches.push(deleted);
      return Promise.resolve(deleted);
    },
  };
}

describe('pruneInBatches', () => {
  it('deletes batch after batch until a batch comes back short', async () => {
    const rows = table(12_000);
    const result = await pruneInBatches(rows.deleteBatch, { batchSize: 5_000, budgetMs: 1_000 }, rows.clock);
    expect(result).to.deep.equal({ deleted: 12_000, caughtUp: true });
    expect(rows.batches).to.deep.equal([5_000, 5_000, 2_000]);
  });

  it('asks once more after an exactly full batch, and is caught up when nothing is left', async () => {
    const rows = table(5_000);
    const result = await pruneInBatches(rows.deleteBatch, { batchSize: 5_000, budgetMs: 1_000 }, rows.clock);
    expect(result).to.deep.equal({ deleted: 5_000, caughtUp: true });
    expect(rows.batches).to.deep.equal([5_000, 0]);
  });

  it('stops when its time is spent and says it has not caught up', async () => {
    const rows = table(100_000, 100);
    const result = await pruneInBatches(rows.deleteBatch, { batchSize: 5_000, budgetMs: 250 }, rows.clock);
    expect(result).to.deep.equal({ deleted: 15_000, caughtUp: false });
  });
});
