/**
 * Message bodies exactly as the broker holds them. rabbitmq-client decodes every body it receives by its content
 * type — `text/plain` into a string (invalid UTF-8 becomes U+FFFD, the bytes are gone), `application/json` into a
 * parsed value (which only a re-serialization can turn back into bytes, if at all) — and has no option to turn
 * that off. A channel passed through `keepRawBodies` receives every body (a delivery, a `basicGet`, a returned
 * message) as the Buffer of its bytes, whatever its content type, with every other field as the client gives it.
 * The worker and the dead-letter tools must hold, show and move bodies they cannot or must not decode, byte for
 * byte.
 *
 * It replaces the last step of the channel's message assembly (the internal `_onBody` of rabbitmq-client 5), so
 * it depends on that version's internals: they are checked on every channel it patches, and a version that
 * changed them fails loudly there instead of silently decoding bodies again.
 */
import type { Channel, Connection } from 'rabbitmq-client';

// AMQP 0-9-1 method ids (class 60 `basic` << 16 | method), as rabbitmq-client's `Cmd` numbers them.
const BASIC_RETURN = (60 << 16) | 50;
const BASIC_DELIVER = (60 << 16) | 60;
const BASIC_GET_OK = (60 << 16) | 71;

interface Incoming {
  methodFrame: { methodId: number; params: Record<string, unknown> };
  headerFrame?: { fields: Record<string, unknown> };
  chunks?: Buffer[];
  received: number;
}

/** What `keepRawBodies` relies on inside a rabbitmq-client 5 channel. */
interface ChannelInternals {
  _onBody(frame?: { payload: Buffer }): void;
  _handleRPC(methodId: number, data: unknown): void;
  _state: { incoming?: Incoming; consumers: Map<string, (message: unknown) => void> };
  emit(event: string, ...args: unknown[]): boolean;
}

const PATCHED = Symbol('payouts.rawBodies');

/** Makes `channel` receive every body as its raw bytes (a Buffer); returns the same channel. */
export function keepRawBodies(channel: Channel): Channel {
  const internals = channel as unknown as ChannelInternals & { [PATCHED]?: true };
  if (internals[PATCHED]) return channel;
  if (
    typeof internals._onBody !== 'function' ||
    typeof internals._handleRPC !== 'function' ||
    typeof internals._state !== 'object' ||
    !(internals._state.consumers instanceof Map)
  ) {
    throw new Error('rabbitmq-client changed its channel internals: raw message bodies are not supported');
  }
  const storeChunk = internals._onBody.bind(internals);
  internals._onBody = function onRawBody(frame?: { payload: Buffer }): void {
    const incoming = internals._state.incoming;
    const chunks = incoming?.chunks;
    const fields = incoming?.headerFrame?.fields;
    // Any frame but the one that completes a message (or an unexpected one) is the client's own business.
    if (!incoming || !chunks || !fields || incoming.received + (frame ? 1 : 0) !== chunks.length) {
      return storeChunk(frame);
    }
    if (frame) chunks[incoming.received++] = frame.payload;
    internals._state.incoming = undefined;
    // As the client builds it, but the body is never decoded.
    const message: Record<string, unknown> = {
      ...incoming.methodFrame.params,
      ...fields,
      durable: fields.deliveryMode === 2,
      body: Buffer.concat(chunks),
    };
    const methodId = incoming.methodFrame.methodId;
    if (methodId === BASIC_DELIVER) {
      const handler = internals._state.consumers.get(message.consumerTag as string);
      // setImmediate as the client does: basicConsume resolves before the first delivery is handled.
      if (handler) setImmediate(handler, message);
    } else if (methodId === BASIC_RETURN) {
      setImmediate(() => internals.emit('basic.return', message));
    } else if (methodId === BASIC_GET_OK) {
      internals._handleRPC(BASIC_GET_OK, message);
    }
  };
  internals[PATCHED] = true;
  return channel;
}

/** Makes every channel acquired from `connection` from now on (by its consumers and publishers too) a raw one. */
export function keepRawBodiesOn(connection: Connection): Connection {
  const acquire = connection.acquire.bind(connection);
  connection.acquire = async (...args: Parameters<Connection['acquire']>) =>
    keepRawBodies(await acquire(...args));
  return connection;
}

/** The raw bytes of a message received on a raw channel. */
export function rawBody(message: { body?: unknown }): Buffer {
  if (!Buffer.isBuffer(message.body)) {
    throw new TypeError(
      'message body was decoded by the client: it must be received on a keepRawBodies channel',
    );
  }
  return message.body;
}
