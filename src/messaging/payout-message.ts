/** Decoding of a processing message: bytes → JSON → the `ProcessMessage` shape (ajv), or the reason it is poison. */
import { Ajv } from 'ajv';
import type { ProcessMessage } from '../persistence/outbox-scheduler.js';

/** Canonical UUIDs only: ajv-formats' `uuid` also accepts `urn:uuid:…`, which PostgreSQL refuses. */
const UUID = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

// Typed by `compile<ProcessMessage>` below: ajv's JSONSchemaType cannot express a required nullable string.
const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['schema_version', 'message_id', 'payout_id', 'client_id', 'request_id'],
  properties: {
    // Version 1 was written before commands existed; it names none (see `ProcessMessage`).
    schema_version: { type: 'integer', enum: [1, 2] },
    message_id: { type: 'string', pattern: UUID },
    payout_id: { type: 'string', pattern: UUID },
    client_id: { type: 'string', pattern: UUID },
    request_id: { type: ['string', 'null'], maxLength: 128, pattern: '^[\\x21-\\x7e]+$' },
    command: {
      type: 'object',
      additionalProperties: false,
      required: ['seq', 'type', 'delay_ms'],
      properties: {
        seq: { type: 'integer', minimum: 1, maximum: 2147483647 },
        type: { type: 'string', enum: ['process', 'submit', 'void', 'status'] },
        delay_ms: { type: 'integer', minimum: 0, maximum: 2147483647 },
      },
    },
  },
};

const validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile<ProcessMessage>(
  schema,
);

export type DecodedMessage =
  | { ok: true; message: ProcessMessage }
  | { ok: false; reason: 'unparseable' | 'invalid_message'; detail: string };

/**
 * The client library parses `application/json` bodies itself and leaves a Buffer when that fails; any other
 * content type arrives as a string or Buffer. All of them are decoded here the same way.
 */
export function decodeProcessMessage(body: unknown): DecodedMessage {
  let value: unknown = body;
  if (Buffer.isBuffer(body) || typeof body === 'string') {
    const text = Buffer.isBuffer(body) ? body.toString('utf8') : body;
    try {
      value = JSON.parse(text) as unknown;
    } catch (error) {
      return { ok: false, reason: 'unparseable', detail: `body is not JSON: ${(error as Error).message}` };
    }
  }
  if (!validate(value)) {
    const detail = (validate.errors ?? [])
      .map((error) => `${error.instancePath || '/'} ${error.message ?? 'is invalid'}`)
      .join('; ');
    return {
      ok: false,
      reason: 'invalid_message',
      detail: detail || 'does not match the process message schema',
    };
  }
  // A version-2 message always names its command; a version-1 message never does.
  if ((value.schema_version === 2) !== (value.command !== undefined)) {
    return {
      ok: false,
      reason: 'invalid_message',
      detail: `/command must be present exactly when schema_version is 2`,
    };
  }
  return { ok: true, message: value };
}
