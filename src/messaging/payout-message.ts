/**
 * The message contract between the outbox and the worker, in one place: the body of a payout message (one of the
 * payout's commands), the message a command becomes (the scheduling port, written into the outbox by the change
 * that issued it), and decoding a delivery back into that body — bytes (bounded in size and depth, strict UTF-8) →
 * JSON → the shape (ajv), or the reason it is poison.
 */
import { isUtf8 } from 'node:buffer';
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

/** Bodies over this size are poison, refused before they are decoded: a payout message is a few hundred bytes. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/** JSON nested deeper than this is poison, refused before it is parsed: a payout message is two levels deep. */
export const MAX_MESSAGE_DEPTH = 32;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPENERS = new Set([0x5b, 0x7b]); // [ {
const CLOSERS = new Set([0x5d, 0x7d]); // ] }

/**
 * Whether the JSON text in `bytes` nests deeper than `limit`, in one pass without recursion: strings (escapes
 * included) are skipped, every other bracket counts. Structural characters are ASCII, which never occurs inside a
 * multi-byte UTF-8 sequence, so the bytes are scanned as they are. For text that is not JSON the answer does not
 * matter: parsing refuses it anyway.
 */
function nestsDeeperThan(bytes: Buffer, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < bytes.length; index += 1) {
    const byte = bytes[index]!;
    if (inString) {
      if (byte === BACKSLASH) index += 1;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (OPENERS.has(byte)) {
      depth += 1;
      if (depth > limit) return true;
    } else if (CLOSERS.has(byte)) {
      depth -= 1;
    }
  }
  return false;
}

/**
 * Decodes a delivery's body — its raw bytes, whatever its content type — into a process message, or the reason it
 * is poison. Bounded before anything is parsed: the size, strict UTF-8 (no replacement characters), the nesting
 * depth; so a hostile body costs one linear scan, never a deep recursion.
 */
export function decodeProcessMessage(body: Buffer): DecodedMessage {
  if (body.length > MAX_MESSAGE_BYTES) {
    return {
      ok: false,
      reason: 'unparseable',
      detail: `body is ${body.length} bytes, over the ${MAX_MESSAGE_BYTES}-byte limit`,
    };
  }
  if (!isUtf8(body)) return { ok: false, reason: 'unparseable', detail: 'body is not valid UTF-8' };
  if (nestsDeeperThan(body, MAX_MESSAGE_DEPTH)) {
    return {
      ok: false,
      reason: 'unparseable',
      detail: `body is JSON nested deeper than ${MAX_MESSAGE_DEPTH} levels`,
    };
  }
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8')) as unknown;
  } catch (error) {
    return { ok: false, reason: 'unparseable', detail: `body is not JSON: ${(error as Error).message}` };
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
