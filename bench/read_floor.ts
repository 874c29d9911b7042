/**
 * The least code that can serve the two reads: GET /api/payouts/:id and a page of GET /api/payouts, with the
 * same selects the service runs on its own schema (scoped by client, hiding deleted rows, keyset on seq), the
 * rows mapped to the public JSON. No auth lookup, no validation framework: the floor the reads are compared to.
 *
 * Plain JavaScript at run time: the harness strips the types (lib.ts `compileFloor`) and runs it with `node`,
 * like the service's dist/. By hand: `node --import tsx bench/read_floor.ts PORT`.
 * Env: FLOOR_DATABASE_URL (a migrated service database), FLOOR_CLIENT_ID (whose payouts are read).
 */
import express from 'express';
import pg from 'pg';

interface Row {
  id: string;
  seq: string;
  amount_minor: string;
  currency: string;
  recipient: { type: string; iban: string; bic?: string | null; holder_name: string };
  status: string;
  description: string | null;
  failure_code: string | null;
  failure_message: string | null;
  created_at: Date;
  updated_at: Date;
  version: number;
}

const [port = '18083'] = process.argv.slice(2);
const url = process.env.FLOOR_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/payouts_bench';
const clientId = process.env.FLOOR_CLIENT_ID;
if (!clientId) throw new Error('FLOOR_CLIENT_ID is required');

const pool = new pg.Pool({ connectionString: url, max: 20 });
const DIGITS: Record<string, number> = { JPY: 0, KWD: 3, BHD: 3 };
const ACTIONS: Record<string, string[]> = { created: ['cancel'] };

function decimal(minor: string, currency: string): string {
  const digits = DIGITS[currency] ?? 2;
  if (digits === 0) return minor;
  const padded = minor.padStart(digits + 1, '0');
  return `${padded.slice(0, -digits)}.${padded.slice(-digits)}`;
}

function resource(row: Row) {
  const r = row.recipient;
  return {
    id: row.id,
    amount: decimal(row.amount_minor, row.currency),
    currency: row.currency,
    recipient: {
      type: r.type,
      iban_last4: r.iban.slice(-4),
      iban_masked: `${r.iban.slice(0, 2)}${'*'.repeat(r.iban.length - 6)}${r.iban.slice(-4)}`,
      bic: r.bic ?? null,
      holder_name: r.holder_name,
    },
    status: row.status,
    available_actions: ACTIONS[row.status] ?? [],
    description: row.description,
    failure: row.failure_code === null ? null : { code: row.failure_code, message: row.failure_message },
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    version: row.version,
  };
}

const app = express();
app.get('/api/payouts/:id', async (req, res) => {
  const { rows } = await pool.query<Row>(
    'SELECT * FROM payouts WHERE id = $1 AND client_id = $2 AND deleted_at IS NULL LIMIT 1',
    [req.params.id, clientId],
  );
  const row = rows[0];
  if (!row) {
    res.status(404).type('application/problem+json').json({ title: 'Not found', status: 404 });
    return;
  }
  res.set('ETag', `"${row.version}"`).json(resource(row));
});
app.get('/api/payouts', async (req, res) => {
  const limit = Number(req.query.limit ?? 20);
  const { rows } = await pool.query<Row>(
    'SELECT * FROM payouts WHERE client_id = $1 AND deleted_at IS NULL ORDER BY seq DESC LIMIT $2',
    [clientId, limit + 1],
  );
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  res.json({
    data: page.map(resource),
    next_cursor: rows.length > limit && last ? Buffer.from(`v1:${last.seq}`).toString('base64url') : null,
  });
});
app.listen(Number(port), '127.0.0.1', () => console.log(`read floor listening on 127.0.0.1:${port}`));
