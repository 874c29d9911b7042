/**
 * `make plans-check`: how PostgreSQL would run every statement the service sent during the integration tests
 * (recorded by test/support/statements.ts into `test-results/statements.json`), on tables of production's shape
 * and size. Fails when any plan reads `payouts`, `payout_events` or `outbox` by a sequential scan: on a table of
 * millions of rows, such a statement's cost grows with the table.
 *
 * A fresh database is created, migrated and seeded (scripts/seed.ts, `PLANS_PAYOUTS` payouts, 300,000 by default),
 * then each statement is prepared as the service sends it and explained with its recorded values: with a plan
 * made for those values (what an unnamed statement gets every time), and, for a named statement, also with the
 * generic plan PostgreSQL may switch it to after five runs. The database is dropped
 * at the end, whatever happens (kept with `PLANS_KEEP_DATABASE=1`, to look into a plan).
 *
 *   node --import tsx scripts/plans-check.ts [test-results/statements.json]
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDb, migrateLatest } from '../src/persistence/db.js';
import type { RecordedStatement } from '../test/support/statements.js';
import { seed } from './seed.js';

const ADMIN_URL = process.env.TEST_ADMIN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const WATCHED = new Set(['payouts', 'payout_events', 'outbox']);
const DML = /^\s*(select|insert|update|delete|with)\b/i;
const PAYOUTS = Number(process.env.PLANS_PAYOUTS ?? 300_000);

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}

/** The sequential scans of watched tables anywhere in a plan. */
function seqScans(node: PlanNode): string[] {
  const own =
    node['Node Type'] === 'Seq Scan' && WATCHED.has(node['Relation Name'] ?? '')
      ? [node['Relation Name']!]
      : [];
  return [...own, ...(node.Plans ?? []).flatMap(seqScans)];
}

function literal(value: string | null): string {
  return value === null ? 'NULL' : `'${value.replace(/'/g, "''")}'`;
}

function oneLine(text: string, length = 160): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > length ? `${line.slice(0, length)}…` : line;
}

async function main(): Promise<void> {
  const file = process.argv[2] ?? 'test-results/statements.json';
  let statements: RecordedStatement[];
  try {
    statements = JSON.parse(readFileSync(file, 'utf8')) as RecordedStatement[];
  } catch (error) {
    throw new Error(`cannot read ${file} (run make test-integration first): ${(error as Error).message}`, {
      cause: error,
    });
  }
  const name = `payouts_plans_${process.pid}_${randomBytes(3).toString('hex')}`;
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const client = new pg.Client({ connectionString: url.toString() });
  try {
    const db = createDb(url.toString(), 1);
    try {
      await migrateLatest(db);
    } finally {
      await db.destroy();
    }
    await client.connect();
    const started = Date.now();
    await seed(client, { payouts: PAYOUTS, clients: 1000, bigClientShare: 0.2 });
    process.stdout.write(`seeded ${PAYOUTS} payouts in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);

    const failures: string[] = [];
    let explained = 0;
    let skipped = 0;
    for (const [index, statement] of statements.entries()) {
      if (!DML.test(statement.text)) {
        skipped += 1;
        continue;
      }
      const prepared = `s${index}`;
      await client.query(`PREPARE ${prepared} AS ${statement.text}`);
      try {
        const execute =
          statement.values.length === 0
            ? `EXECUTE ${prepared}`
            : `EXECUTE ${prepared}(${statement.values.map(literal).join(', ')})`;
        const modes = statement.named ? ['force_custom_plan', 'force_generic_plan'] : ['force_custom_plan'];
        for (const mode of modes) {
          await client.query(`SET plan_cache_mode = ${mode}`);
          const result = await client.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
            `EXPLAIN (FORMAT JSON) ${execute}`,
          );
          const scans = seqScans(result.rows[0]!['QUERY PLAN'][0]!.Plan);
          if (scans.length > 0) {
            failures.push(
              `sequential scan of ${[...new Set(scans)].join(', ')} (${mode}) in\n    ${oneLine(statement.text)}\n    from ${statement.from}`,
            );
          }
        }
        explained += 1;
      } finally {
        await client.query(`DEALLOCATE ${prepared}`);
        await client.query('RESET plan_cache_mode');
      }
    }
    process.stdout.write(
      `${explained} statements explained (${skipped} not plannable: LISTEN, BEGIN, SET…), each with the plan ` +
        `for its values and, for the ${statements.filter((s) => s.named).length} named ones, the generic plan, ` +
        `on ${PAYOUTS} payouts\n`,
    );
    if (explained === 0) throw new Error(`no statement in ${file}: the recording is empty`);
    if (failures.length > 0) {
      process.stderr.write(
        `${failures.length} plan(s) read a large table in full:\n  ${failures.join('\n  ')}\n`,
      );
      process.exitCode = 1;
    } else {
      process.stdout.write('no sequential scan of payouts, payout_events or outbox\n');
    }
  } finally {
    await client.end().catch(() => undefined);
    if (process.env.PLANS_KEEP_DATABASE) process.stdout.write(`kept database ${name}\n`);
    else await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`plans-check failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
