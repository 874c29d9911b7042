/**
 * The DLQ tools' filters and protections against the real broker: replay and drop act only on the dead letters
 * matching REASON / ID / LIMIT and leave every other one in the queue, in its order; a dry run moves nothing; a
 * drop needs the exact count confirmed; a replay refuses reasons that never succeed unless forced.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { ConfirmedPublisher } from '../../../src/messaging/amqp.js';
import { dlqDrop, dlqReplay } from '../../../src/dlq/commands.js';
import { listDeadLetters } from '../../../src/dlq/dead-letters.js';
import { createLogger } from '../../../src/logger.js';
import { queueDepth, queueDestination } from '../../../src/messaging/topology.js';
import { consumerEnv, useConsumerHarness, waitFor } from '../../support/consumers.js';
import { LogCapture } from '../../support/logs.js';

const P1 = randomUUID();
const P2 = randomUUID();

/** The queue as seeded: message id, reason, payout id (none for a body that could not be parsed). */
const SEEDED: Array<[string, string, string | null]> = [
  ['a', 'delivery_limit', P1],
  ['b', 'unparseable', null],
  ['c', 'retries_exhausted', P2],
  ['d', 'delivery_limit', P2],
  ['e', 'processing_error', randomUUID()],
  ['f', 'unknown_payout', randomUUID()],
];

describe('consumers: DLQ tools (filters, dry run, drop confirmation, refusals)', function () {
  this.timeout(120_000);
  const harness = useConsumerHarness();
  let publisher: ConfirmedPublisher;

  before(() => {
    publisher = new ConfirmedPublisher(harness.broker);
    harness.defer(() => publisher.close());
  });

  beforeEach(async () => {
    for (const [messageId, reason, payoutId] of SEEDED) {
      await publisher.publish(
        {
          ...queueDestination(harness.names.deadLetterQueue),
          durable: true,
          messageId,
          contentType: 'application/json',
          headers: { 'x-death-reason': reason, ...(payoutId ? { 'x-payout-id': payoutId } : {}) },
        },
        Buffer.from(payoutId ? JSON.stringify({ payout_id: payoutId }) : 'not json'),
      );
    }
    // Listed once, as an operator does before acting: the broker now holds every one as a returned message, which
    // is where a tool that gave back only some of them would reorder the queue.
    expect(await deadLetterIds(SEEDED.length)).to.deep.equal(SEEDED.map(([messageId]) => messageId));
  });

  afterEach(async () => {
    await harness.broker.queuePurge({ queue: harness.names.deadLetterQueue });
    await harness.broker.queuePurge({ queue: harness.names.workQueue });
  });

  /** The message ids in the DLQ, in queue order, once the queue counts them all again. */
  async function deadLetterIds(expected: number): Promise<string[]> {
    await settled(expected);
    const ids = (await listDeadLetters(harness.broker, harness.names)).map(
      (letter) => letter.messageId ?? '',
    );
    await settled(expected);
    return ids;
  }

  /** Returned messages count again a moment after the tool's channel closes. */
  async function settled(expected: number): Promise<void> {
    await waitFor(
      async () => (await queueDepth(harness.broker, harness.names.deadLetterQueue)) === expected,
      { timeoutMs: 5_000 },
    );
  }

  /** The message ids moved to the work queue, taken off it. */
  async function replayedIds(): Promise<string[]> {
    const ids: string[] = [];
    for (;;) {
      const message = await harness.broker.basicGet({ queue: harness.names.workQueue, noAck: true });
      if (!message) return ids;
      ids.push(message.messageId ?? '');
    }
  }

  it('replays only the dead letters of a reason; the others stay, in order', async () => {
    const report = await dlqReplay(harness.config, harness.ctx.log, { reason: 'delivery_limit' });
    expect(report).to.include({ replayed: 2, refused: 0, failed: 0 });
    expect(await replayedIds()).to.deep.equal(['a', 'd']);
    expect(await deadLetterIds(4)).to.deep.equal(['b', 'c', 'e', 'f']);
  });

  it('replays by payout id (every message of the payout) or by message id', async () => {
    expect(await dlqReplay(harness.config, harness.ctx.log, { id: P2 })).to.include({ replayed: 2 });
    expect(await replayedIds()).to.deep.equal(['c', 'd']);
    expect(await dlqReplay(harness.config, harness.ctx.log, { id: 'e' })).to.include({ replayed: 1 });
    expect(await replayedIds()).to.deep.equal(['e']);
    expect(await deadLetterIds(3)).to.deep.equal(['a', 'b', 'f']);
  });

  it('replays at most LIMIT, the first matching ones', async () => {
    const report = await dlqReplay(harness.config, harness.ctx.log, { limit: 2 });
    // b comes before c but is refused, so it does not count.
    expect(report).to.include({ replayed: 2, refused: 1, failed: 0 });
    expect(await replayedIds()).to.deep.equal(['a', 'c']);
    expect(await deadLetterIds(4)).to.deep.equal(['b', 'd', 'e', 'f']);
  });

  it('a dry run reports what it would replay and moves nothing', async () => {
    const report = await dlqReplay(harness.config, harness.ctx.log, {
      reason: 'delivery_limit',
      dryRun: true,
    });
    expect(report).to.include({ replayed: 2, refused: 0, failed: 0 });
    expect(report.letters.map((letter) => letter.messageId)).to.deep.equal(['a', 'd']);
    expect(await queueDepth(harness.broker, harness.names.workQueue)).to.equal(0);
    expect(await deadLetterIds(6)).to.deep.equal(['a', 'b', 'c', 'd', 'e', 'f']);
  });

  it('refuses reasons that never succeed unless forced; the refused stay in the queue', async () => {
    const report = await dlqReplay(harness.config, harness.ctx.log);
    expect(report).to.include({ replayed: 4, refused: 2, failed: 0 });
    expect(await replayedIds()).to.deep.equal(['a', 'c', 'd', 'e']);
    expect(await deadLetterIds(2)).to.deep.equal(['b', 'f']);

    expect(
      await dlqReplay(harness.config, harness.ctx.log, { reason: 'unparseable', force: true }),
    ).to.include({
      replayed: 1,
      refused: 0,
    });
    expect(await replayedIds()).to.deep.equal(['b']);
    expect(await deadLetterIds(1)).to.deep.equal(['f']);
  });

  it('drops nothing without the matching count confirmed, then drops exactly those and logs each', async () => {
    const filter = { reason: 'delivery_limit' };
    const unconfirmed = await dlqDrop(harness.config, harness.ctx.log, filter);
    expect(unconfirmed.dropped).to.equal(0);
    expect(unconfirmed.matched.map((letter) => letter.messageId)).to.deep.equal(['a', 'd']);
    expect(await deadLetterIds(6)).to.deep.equal(['a', 'b', 'c', 'd', 'e', 'f']);

    expect(await dlqDrop(harness.config, harness.ctx.log, { ...filter, confirm: 3 })).to.include({
      dropped: 0,
    });
    expect(await deadLetterIds(6)).to.deep.equal(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(
      await dlqDrop(harness.config, harness.ctx.log, { ...filter, confirm: 2, dryRun: true }),
    ).to.include({
      dropped: 0,
    });
    expect(await deadLetterIds(6)).to.deep.equal(['a', 'b', 'c', 'd', 'e', 'f']);

    const capture = new LogCapture();
    const log = createLogger({ destination: capture });
    expect(await dlqDrop(harness.config, log, { ...filter, confirm: 2 })).to.include({ dropped: 2 });
    expect(await deadLetterIds(4)).to.deep.equal(['b', 'c', 'e', 'f']);
    expect(await queueDepth(harness.broker, harness.names.workQueue)).to.equal(0);
    const dropped = capture.records().filter((record) => record.msg === 'dead letter dropped');
    expect(
      dropped.map(({ level, message_id, payout_id, reason }) => ({ level, message_id, payout_id, reason })),
    ).to.deep.equal([
      { level: 'info', message_id: 'a', payout_id: P1, reason: 'delivery_limit' },
      { level: 'info', message_id: 'd', payout_id: P2, reason: 'delivery_limit' },
    ]);
  });

  it('make dlq-drop prints the count and needs CONFIRM; dlq-list prints the logs’ field names; logs on stderr', async () => {
    const refused = await run('dlq-drop', '--id', P2, '--confirm', '');
    expect(refused.code, refused.stderr).to.equal(1);
    expect(said(refused.stderr)).to.equal(
      '2 dead letter(s) match; nothing dropped: run again with CONFIRM=2 to drop them\n',
    );
    const printed = refused.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(printed.map((letter) => letter.message_id)).to.deep.equal(['c', 'd']);
    expect(printed[0]).to.include({ message_id: 'c', payout_id: P2, reason: 'retries_exhausted' });
    expect(printed[0]).to.have.keys(
      'message_id',
      'payout_id',
      'request_id',
      'reason',
      'detail',
      'dead_lettered_at',
      'content_type',
      'body_bytes',
      'body_encoding',
      'body',
    );
    expect(await deadLetterIds(6)).to.deep.equal(['a', 'b', 'c', 'd', 'e', 'f']);

    const dropped = await run('dlq-drop', '--id', P2, '--confirm', '2');
    expect(dropped.code, dropped.stderr).to.equal(0);
    expect(said(dropped.stderr)).to.equal('2 dead letter(s) dropped\n');
    // At the default level the drops are logged, on stderr: stdout holds the dead letters only.
    expect(logLines(dropped.stderr).map((line) => line.msg)).to.include('dead letter dropped');
    for (const line of dropped.stdout.trim().split('\n'))
      expect(JSON.parse(line)).to.not.have.property('level');
    expect(await deadLetterIds(4)).to.deep.equal(['a', 'b', 'e', 'f']);

    const guessed = await run('dlq-replay', '--dry-run', 'yes');
    expect(guessed.code).to.equal(2);
    expect(said(guessed.stderr)).to.equal('--dry-run must be 1 or 0, not "yes"\n');
  });

  it('QUEUE=webhooks: lists, replays to the webhooks queue and drops the webhook dead letters alone', async () => {
    const names = harness.names;
    const deliveries = [randomUUID(), randomUUID()];
    for (const [index, delivery] of deliveries.entries()) {
      await publisher.publish(
        {
          ...queueDestination(names.webhookDeadLetterQueue),
          durable: true,
          messageId: delivery,
          contentType: 'application/json',
          headers: {
            'x-death-reason': index === 0 ? 'processing_error' : 'invalid_message',
            'x-attempt': 3,
            'x-original-queue': names.webhookQueue,
          },
        },
        Buffer.from(JSON.stringify({ delivery_id: delivery })),
      );
    }
    await waitFor(async () => (await queueDepth(harness.broker, names.webhookDeadLetterQueue)) === 2, {
      timeoutMs: 5_000,
    });
    const listed = await run('dlq-list', '--queue', 'webhooks');
    expect(listed.code, listed.stderr).to.equal(0);
    const letters = listed.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { message_id: string; reason: string });
    expect(letters.map(({ message_id, reason }) => [message_id, reason])).to.deep.equal([
      [deliveries[0], 'processing_error'],
      [deliveries[1], 'invalid_message'],
    ]);

    // The payouts' DLQ is untouched by a webhooks replay, and the other way round.
    const report = await dlqReplay(harness.config, harness.ctx.log, { queue: 'webhooks' });
    expect(report).to.include({ replayed: 1, refused: 1, failed: 0 });
    const replayed = await harness.broker.basicGet({ queue: names.webhookQueue, noAck: true });
    expect(replayed?.messageId).to.equal(deliveries[0]);
    expect(replayed?.headers?.['x-attempt'], 'a fresh counter').to.equal(undefined);
    expect(replayed?.headers?.['x-death-reason']).to.equal(undefined);
    expect(await replayedIds(), 'nothing reached the payouts').to.deep.equal([]);
    expect(await deadLetterIds(SEEDED.length)).to.deep.equal(SEEDED.map(([messageId]) => messageId));

    const dropped = await run('dlq-drop', '--queue', 'webhooks', '--confirm', '1');
    expect(dropped.code, dropped.stderr).to.equal(0);
    await waitFor(async () => (await queueDepth(harness.broker, names.webhookDeadLetterQueue)) === 0, {
      timeoutMs: 5_000,
    });
    const wrong = await run('dlq-list', '--queue', 'refunds');
    expect(wrong.code).to.equal(2);
    expect(said(wrong.stderr)).to.equal('--queue must be payouts or webhooks, not "refunds"\n');
  });

  interface Run {
    code: number | null;
    stdout: string;
    stderr: string;
  }

  /** What a command said to a person on stderr: its lines that are not log lines. */
  function said(stderr: string): string {
    return stderr
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('{'))
      .map((line) => `${line}\n`)
      .join('');
  }

  function logLines(stderr: string): Array<{ msg?: string; level?: string }> {
    return stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { msg?: string; level?: string });
  }

  /** `node --import tsx src/main.ts <args>` on the test's namespace, logging JSON at the default level. */
  function run(...args: string[]): Promise<Run> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', 'src/main.ts', ...args],
        {
          cwd: new URL('../../..', import.meta.url).pathname,
          env: {
            ...process.env,
            ...consumerEnv(harness.config.amqpNamespace),
            LOG_LEVEL: 'info',
            LOG_FORMAT: 'json',
          },
          timeout: 60_000,
        },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  }
});
