/**
 * The message contract between the outbox and the worker, in one place: the body of a payout message (one of the
 * payout's commands), the message a command becomes (the scheduling port, written into the outbox by the change
 * that issued it), and decoding a delivery back into that body — bytes → JSON → the shape (ajv), or the reason it
 * is poison.
 */
import { Ajv } from 'ajv';
import { v7 as uuidv7 } from 'uuid';
import type { CommandRequest, ProcessingScheduler, ScheduledMessage } from '../domain/scheduling.js';
import { CANONICAL_UUID_PATTERN } from '../domain/text.js';
import type { PayoutCommandType } from '../machines/payout.machine.js';

export const PROCESS_TOPIC = 'payout.process';
export const PROCESS_MESSAGE_SCHEMA_VERSION = 2;

/**
 * The body of a payout message, as it travels from the outbox to the worker: one of the payout's commands.
 * Version 1 (written before commands existed) has no `command`: the worker reads it as "carry out whatever the
 * payout has outstanding now".
 */
export interface ProcessMessage {
  schema_version: 1 | 2;
  message_id: string;
  payout_id: string;
  client_id: string;
  request_id: string | null;
  command?: { seq: number; type: PayoutCommandType; delay_ms: number };
}

/** The scheduling port's messages: each command of a payout as the message that carries it. */
export class PayoutMessages implements ProcessingScheduler {
  messageFor(request: CommandRequest): ScheduledMessage {
    const id = uuidv7();
    const { seq, type, delay_ms } = request.command;
    const payload: ProcessMessage = {
      schema_version: PROCESS_MESSAGE_SCHEMA_VERSION,
      message_id: id,
      payout_id: request.payoutId,
      client_id: request.clientId,
      request_id: request.requestId,
      command: { seq, type, delay_ms },
    };
    return {
      id,
      topic: PROCESS_TOPIC,
      payload: payload as unknown as Record<string, unknown>,
      payoutId: request.payoutId,
      commandSeq: seq,
      leaseMs: request.leaseMs,
    };
  }
}

// Typed by `compile<ProcessMessage>` below: ajv's JSONSchemaType cannot express a required nullable string.
const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['schema_version', 'message_id', 'payout_id', 'client_id', 'request_id'],
  properties: {
    // Version 1 was written before commands existed; it names none (see `ProcessMessage`).
    schema_version: { type: 'integer', enum: [1, 2] },
    // Canonical UUIDs only: ajv-formats' `uuid` also accepts `urn:uuid:…`, which PostgreSQL refuses.
    message_id: { type: 'string', pattern: CANONICAL_UUID_PATTERN },
    payout_id: { type: 'string', pattern: CANONICAL_UUID_PATTERN },
    client_id: { type: 'string', pattern: CANONICAL_UUID_PATTERN },
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
