/**
 * A payout's public representation (`toPayoutResource`, src/domain/payout-resource.ts) written by PostgreSQL: a list
 * page's rows and a payout read by id leave the database as the JSON the API answers, so the API neither parses a
 * row, a timestamp or a recipient nor builds and serializes an object per payout (bench/README.md: a page cost the
 * API more than twice its floor's CPU, half of it in those steps).
 *
 * The expression is generated from the same sources as `toPayoutResource`: the currencies' minor digits
 * (`MINOR_DIGITS`) and the machine's available actions by role and position (`availableActionsTable`), so neither
 * rule is restated here. What is restated is the shape, the masking of the account and the formats of amounts and
 * times; `test/integration/persistence/payout-resource-sql.test.ts` holds the two renderings equal for payouts in
 * every position, every currency, every role and awkward text.
 */
import { MINOR_DIGITS } from '../domain/currency.js';
import { availableActionsTable } from '../domain/payout.js';

/** `10^-digits` as a numeric literal: an exact product with the amount in minor units, at that scale. */
function minorUnit(digits: number): string {
  return digits === 0 ? '1' : `0.${'0'.repeat(digits - 1)}1`;
}

/**
 * The amount of row `alias` as the canonical decimal string (`Money.toDecimal`): minor units times the currency's
 * unit, exact in numeric and printed at the currency's scale. Null for a currency missing from `MINOR_DIGITS`: the
 * reader refuses such a row, as `toPayout` does, by its `currency` selected beside the resource.
 */
function amountSql(alias: string): string {
  const units = Object.entries(MINOR_DIGITS)
    .map(([code, digits]) => `WHEN '${code}' THEN ${minorUnit(digits)}`)
    .join(' ');
  return `(${alias}.amount_minor::numeric * CASE ${alias}.currency ${units} END)::text`;
}

/** A timestamp as `Date.prototype.toISOString` writes it: UTC, milliseconds (truncated, as pg's parser does). */
function timeSql(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}

/** The actions table as a jsonb literal (its keys and actions are identifiers: no quote to escape). */
const ACTIONS_LITERAL = `'${JSON.stringify(availableActionsTable())}'::jsonb`;

/** The columns of a subquery (`SELECT …`) as one compact JSON object: its column names are the keys, in order. */
function objectSql(select: string): string {
  return `(SELECT row_to_json(o) FROM (SELECT ${select}) o)`;
}

/**
 * The payout row `alias` as its `PayoutResource` JSON text, keys in the order `toPayoutResource` writes them, for a
 * principal of role `role` (a SQL expression of type text, e.g. a placeholder). Compact but for the values stored as
 * jsonb (`available_actions`, a `last_error`), which PostgreSQL prints with a space after `:` and `,`.
 */
export function payoutResourceSql(alias: string, role: string): string {
  const iban = `(${alias}.recipient->>'iban')`;
  const recipient = objectSql(`'iban'::text AS type, right(${iban}, 4) AS iban_last4,
        repeat('*', length(${iban}) - 4) || right(${iban}, 4) AS iban_masked,
        ${alias}.recipient->'bic' AS bic, ${alias}.recipient->'holder_name' AS holder_name`);
  const failure = objectSql(`${alias}.failure_code AS code, coalesce(${alias}.failure_message, '') AS message
        WHERE ${alias}.failure_code IS NOT NULL`);
  const position = `${alias}.status || '.' || coalesce(${alias}.stage, '')`;
  return `${objectSql(`${alias}.id,
      ${amountSql(alias)} AS amount,
      ${alias}.currency,
      ${recipient} AS recipient,
      ${alias}.status,
      ${alias}.stage,
      ${ACTIONS_LITERAL} -> (${role} || ':' || ${position}) AS available_actions,
      ${alias}.description,
      ${failure} AS failure,
      coalesce(${alias}.snapshot->'context'->'last_error', 'null'::jsonb) AS last_error,
      ${timeSql(`${alias}.created_at`)} AS created_at,
      ${timeSql(`${alias}.updated_at`)} AS updated_at,
      ${alias}.version`)}::text`;
}
