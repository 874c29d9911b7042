/**
 * Bodies that break naive handling — nested 5,000 levels deep, invalid UTF-8, a JSON string, over the size limit,
 * nested just past the depth limit — leave the work queue once, as dead letters with our reason, their exact bytes,
 * their content type and their headers; the DLQ tools (`dlq-list` as an operator runs it, `dlq-replay`) list and
 * move every one of them, and the worker dead-letters them again, byte for byte.
 */
import { execFile } from 'node:child_process';
import { expect } from 'chai';
import { ConfirmedPublisher } from '../../../src/messaging/amqp.js';
import { dlqList, dlqReplay } from '../../../src/dlq/commands.js';
import { keepRawBodies } from '../../../src/messaging/raw-bodies.js';
import type { Destination } from '../../../src/messaging/topology.js';
import { queueDepth, queueDestination, workDestination } from '../../../src/messaging/topology.js';
import type { HarnessRole } from '../../support/consumers.js';
import { consumerEnv, useConsumerHarness, waitFor } from '../../support/consumers.js';

interface Poison {
  messageId: string;
  contentType: string;
  bytes: Buffer;
  /** Our reason, and what its detail must say. */
  reason: 'unparseable' | 'invalid_message';
  detail: RegExp;
}

const POISON: Poison[] = [
  {
    messageId: 'poison-nested',
    contentType: 'application/json',
    bytes: Buffer.from(`${'['.repeat(5_000)}${']'.repeat(5_000)}`),
    reason: 'unparseable',
    detail: /nested deeper than 32/,
  },
  {
    messageId: 'poison-utf8',
    contentType: 'text/plain',
    bytes: Buffer.concat([
      Buffer.from('{"schema_version":1,"note":"'),
      Buffer.from([0xc3, 0x28, 0xff, 0xfe]),
      Buffer.from('"}'),
    ]),
    reason: 'unparseable',
    detail: /UTF-8/,
  },
  {
    messageId: 'poison-string',
    contentType: 'application/json',
    bytes: Buffer.from('"a string"'),
    reason: 'invalid_message',
    detail: /must be object/,
  },
  {
    messageId: 'poison-large',
    contentType: 'application/json',
    bytes: Buffer.from(JSON.stringify({ schema_version: 1, pad: 'x'.repeat(70_000) })),
    reason: 'unparseable',
    detail: /over the 65536-byte limit/,
  },
  {
    messageId: 'poison-deep-object',
    contentType: 'application/json',
    bytes: Buffer.from(`${'{"a":'.repeat(33)}1${'}'.repeat(33)}`),
    reason: 'unparseable',
    detail: /nested deeper than 32/,
  },
];

const HEADERS = { 'x-custom': 'kept', 'x-number': 7 };

interface RawLetter {
  messageId: string | undefined;
  contentType: string | undefined;
  headers: Record<string, unknown>;
  bytes: Buffer;
}

describe('consumers: poison bodies', function () {
  this.timeout(180_000);
  const harness = useConsumerHarness();
  let publisher: ConfirmedPublisher;

  before(() => {
    publisher = new ConfirmedPublisher(harness.broker);
    harness.defer(() => publisher.close());
  });

  afterEach(async () => {
    await harness.broker.queuePurge({ queue: harness.names.deadLetterQueue });
    await harness.broker.queuePurge({ queue: harness.names.workQueue });
  });

  async function publishPoison(destination: Destination, extraHeaders: Record<string, unknown> = {}) {
    for (const poison of POISON) {
      // A Buffer body goes out as it is, under the content type of the envelope.
      await publisher.publish(
        {
          ...destination,
          durable: true,
          messageId: poison.messageId,
          contentType: poison.contentType,
          headers: { ...HEADERS, ...extraHeaders },
        },
        poison.bytes,
      );
    }
  }

  /** The dead letters as the broker holds them (bytes, not a decoding), left in the queue. */
  async function rawDeadLetters(): Promise<Map<string, RawLetter>> {
    const channel = keepRawBodies(await harness.broker.acquire());
    const letters = new Map<string, RawLetter>();
    try {
      let lastTag: number | undefined;
      for (;;) {
        const message = await channel.basicGet({ queue: harness.names.deadLetterQueue, noAck: false });
        if (!message) break;
        lastTag = message.deliveryTag;
        letters.set(message.messageId ?? '', {
          messageId: message.messageId,
          contentType: message.contentType,
          headers: message.headers ?? {},
          bytes: message.body as Buffer,
        });
      }
      if (lastTag !== undefined) channel.basicNack({ deliveryTag: lastTag, multiple: true, requeue: true });
    } finally {
      await channel.close().catch(() => undefined);
    }
    await waitFor(
      async () => (await queueDepth(harness.broker, harness.names.deadLetterQueue)) === letters.size,
      {
        timeoutMs: 5_000,
      },
    );
    return letters;
  }

  /** Each poison message is in the DLQ once, exactly as published, with our reason (every difference reported). */
  async function expectDeadLetteredAsPublished(extraHeaders: Record<string, unknown> = {}): Promise<void> {
    const letters = await rawDeadLetters();
    expect([...letters.keys()].sort()).to.deep.equal(POISON.map((poison) => poison.messageId).sort());
    const problems: string[] = [];
    const check = (what: string, ok: boolean, said: () => string) => {
      if (!ok) problems.push(`${what}: ${said()}`);
    };
    for (const poison of POISON) {
      const letter = letters.get(poison.messageId)!;
      const what = poison.messageId;
      check(what, letter.bytes.equals(poison.bytes), () => {
        const shown = letter.bytes.subarray(0, 40).toString('hex');
        return `bytes changed (${poison.bytes.length} → ${letter.bytes.length} bytes, starting ${shown})`;
      });
      check(what, letter.contentType === poison.contentType, () => `content type ${letter.contentType}`);
      for (const [name, value] of Object.entries({ ...HEADERS, ...extraHeaders })) {
        check(what, letter.headers[name] === value, () => `header ${name} = ${String(letter.headers[name])}`);
      }
      const reason = letter.headers['x-death-reason'];
      const detail = letter.headers['x-death-detail'];
      check(what, reason === poison.reason, () => `reason ${String(reason)}`);
      check(what, typeof detail === 'string' && poison.detail.test(detail), () => `detail ${String(detail)}`);
      check(
        what,
        letter.headers['x-first-death-reason'] === undefined,
        () => `dead-lettered by the broker (${String(letter.headers['x-first-death-reason'])})`,
      );
    }
    expect(problems).to.deep.equal([]);
  }

  async function outcomes(worker: HarnessRole): Promise<Record<string, number>> {
    const metric = await worker.ctx.metrics.consumerOutcomes.get();
    const counts: Record<string, number> = {};
    for (const value of metric.values) {
      // The worker creates its retry and dead-letter series at 0 when it starts: only what happened counts.
      if (value.value === 0) continue;
      const outcome = String(value.labels.outcome);
      counts[outcome] = (counts[outcome] ?? 0) + value.value;
    }
    return counts;
  }

  it('dead-letters each poison body once, with our reason, its bytes, content type and headers', async () => {
    const worker = await harness.startWorker();
    const started = Date.now();
    await publishPoison({ ...workDestination(harness.names) });
    // Long enough for the broker's delivery limit to dead-letter a message the worker keeps requeueing.
    await waitFor(
      async () => (await queueDepth(harness.broker, harness.names.deadLetterQueue)) === POISON.length,
      { timeoutMs: 60_000 },
    );
    const elapsedMs = Date.now() - started;
    await expectDeadLetteredAsPublished();
    // Each left the work queue on its first delivery: dead-lettered by the worker, never requeued.
    expect(await outcomes(worker)).to.deep.equal({ dead_letter: POISON.length });
    expect(elapsedMs, 'dead-lettered without a requeue loop').to.be.below(5_000);
    expect(await queueDepth(harness.broker, harness.names.workQueue)).to.equal(0);
  });

  it('lists every poison dead letter (the command exits 0) and replays them all; the worker dead-letters them again', async () => {
    await publishPoison(queueDestination(harness.names.deadLetterQueue), {
      'x-death-reason': 'unparseable',
      'x-death-detail': 'an earlier worker said so',
    });
    expect(await queueDepth(harness.broker, harness.names.deadLetterQueue)).to.equal(POISON.length);

    // `make dlq-list` as an operator runs it.
    const run = await dlqListCommand(harness.config.amqpNamespace);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stderr).to.equal(`${POISON.length} dead letter(s) listed; all are still in the queue\n`);
    const lines = run.stdout.trim().split('\n');
    expect(lines).to.have.length(POISON.length);
    const listed = new Map(
      lines.map((line) => {
        const letter = JSON.parse(line) as Record<string, unknown>;
        return [letter.message_id, letter];
      }),
    );
    expect([...listed.keys()].sort()).to.deep.equal(POISON.map((poison) => poison.messageId).sort());
    expect(listed.get('poison-nested')).to.include({
      reason: 'unparseable',
      content_type: 'application/json',
      body_bytes: 10_000,
      body_encoding: 'utf8',
      body: '['.repeat(2_000),
    });
    // Invalid UTF-8 is shown as its bytes, never with replacement characters.
    const utf8 = POISON.find((poison) => poison.messageId === 'poison-utf8')!;
    expect(listed.get('poison-utf8')).to.include({
      content_type: 'text/plain',
      body_encoding: 'base64',
      body: utf8.bytes.toString('base64'),
    });
    expect(listed.get('poison-string')).to.include({ body: '"a string"', content_type: 'application/json' });
    await waitFor(
      async () => (await queueDepth(harness.broker, harness.names.deadLetterQueue)) === POISON.length,
      { timeoutMs: 5_000 },
    );
    // The function behind it lists them all too.
    expect(await dlqList(harness.config)).to.have.length(POISON.length);
    await waitFor(
      async () => (await queueDepth(harness.broker, harness.names.deadLetterQueue)) === POISON.length,
      { timeoutMs: 5_000 },
    );

    // `make dlq-replay FORCE=1` (their reason never succeeds, so only forced): all of them go back to the work
    // queue, as they are.
    expect(await dlqReplay(harness.config, harness.ctx.log, { force: true })).to.include({
      replayed: POISON.length,
      refused: 0,
      failed: 0,
    });
    expect(await queueDepth(harness.broker, harness.names.deadLetterQueue)).to.equal(0);
    expect(await queueDepth(harness.broker, harness.names.workQueue)).to.equal(POISON.length);

    const worker = await harness.startWorker();
    await waitFor(
      async () => (await queueDepth(harness.broker, harness.names.deadLetterQueue)) === POISON.length,
      { timeoutMs: 60_000 },
    );
    // Our reasons replace the earlier ones; the bytes, content types and headers are still the published ones.
    await expectDeadLetteredAsPublished();
    const letters = await rawDeadLetters();
    for (const letter of letters.values()) expect(letter.headers).to.have.property('x-replayed-at');
    expect(await outcomes(worker)).to.deep.equal({ dead_letter: POISON.length });
  });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `node --import tsx src/main.ts dlq-list` on the test's namespace, logs off. */
function dlqListCommand(namespace: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/main.ts', 'dlq-list'],
      {
        cwd: new URL('../../..', import.meta.url).pathname,
        env: { ...process.env, ...consumerEnv(namespace), LOG_LEVEL: 'silent' },
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
