/**
 * `make bench`: the API exactly as `make run` starts it, against the one-statement limit, alternating, in one run.
 *
 * Create: `../shared/limits/http_floor.mjs PORT create1` (bare node:http, the same writes as one prepared
 * statement) and the API (built, `node dist/src/main.js api`, its default settings: log level, pool size), each
 * loaded by wrk (`-t1 -c32 -d8s`) with the same valid body and a fresh `Idempotency-Key` on every request. Reads:
 * `GET /api/payouts/{id}` and `GET /api/payouts?limit=20` against the same probe's `read1` / `list1` (one
 * prepared query on bare node:http, on the floor's own table as its create runs filled it).
 * Prints every run, the medians, the ratios next to their targets, non-2xx counts and the API's peak RSS.
 *
 * Env: see bench/suite.ts. Exits non-zero on a harness error or any non-2xx response; a missed target is
 * reported, not a failure.
 */
import {
  prepareServiceDatabase,
  problems,
  recreateDatabase,
  reportProblems,
  runMain,
  writeResults,
} from './lib.js';
import { CONNECTIONS } from './lib.js';
import { ROUNDS, RSS_TARGET_MB, SECONDS, SELF_TEST, TARGETS, WARMUP, runSuite } from './suite.js';

async function main(): Promise<void> {
  process.stdout.write(
    `make bench: ${ROUNDS} rounds × ${SECONDS} s (+${WARMUP} s warm-up) at ${CONNECTIONS} connections, ` +
      `wrk -t1, the API as \`make run\` starts it${SELF_TEST ? ', SELF TEST (floor vs floor)' : ''}\n`,
  );
  const { url: serviceUrl, apiKey } = await prepareServiceDatabase('payouts_bench');
  const floorUrl = await recreateDatabase('payouts_bench_floor');
  const { summary, runs } = await runSuite({ serviceUrl, floorUrl, apiKey, clientName: 'bench' });
  const file = writeResults('create', {
    at: new Date().toISOString(),
    selfTest: SELF_TEST,
    settings: { seconds: SECONDS, warmup: WARMUP, rounds: ROUNDS, connections: CONNECTIONS },
    targets: { ...TARGETS, rssMb: RSS_TARGET_MB },
    summary,
    runs,
    problems,
  });
  process.stdout.write(`\nresults: ${file}\n`);
  reportProblems();
}

await runMain('bench', main, { deleteTopology: true });
