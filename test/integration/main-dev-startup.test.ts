/**
 * `make dev` without its services, as a newcomer meets it: PostgreSQL or RabbitMQ not running (here: a closed port)
 * is one line on stderr naming the setting to check, never a JSON log line with a stack; the wait for RabbitMQ is
 * said, not spent in silence.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { testDatabaseUrl } from '../support/database.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `node --import tsx src/main.ts dev` with `env` over the run's database, logs as JSON at info. */
function dev(env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/main.ts', 'dev'],
      {
        cwd: new URL('../..', import.meta.url).pathname,
        env: {
          ...process.env,
          DATABASE_URL: testDatabaseUrl(),
          LOG_LEVEL: 'info',
          LOG_FORMAT: 'json',
          PORT: '0',
          METRICS_PORT: '0',
          ...env,
        },
        timeout: 40_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A port on which nothing listens. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('main: make dev without its services', function () {
  this.timeout(60_000);

  it('PostgreSQL not there: exit 1, one line naming DATABASE_URL and DATABASE_MIGRATION_URL, no stack', async () => {
    const port = await closedPort();
    const run = await dev({ DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/payouts` });
    expect(run.code, run.stderr).to.equal(1);
    expect(run.stderr).to.match(
      new RegExp(
        `^dev failed: PostgreSQL is unavailable \\(unreachable: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\); check that it runs, DATABASE_URL and DATABASE_MIGRATION_URL\\n$`,
      ),
    );
    expect(`${run.stdout}${run.stderr}`).to.not.match(/"stack"|^\s+at .+:\d+:\d+\)?$/m);
  });

  it('RabbitMQ not there: says it waits for it at its address, then exit 1 with one line naming AMQP_URL', async () => {
    const port = await closedPort();
    const run = await dev({ AMQP_URL: `amqp://guest:guest@127.0.0.1:${port}` });
    expect(run.code, run.stderr).to.equal(1);
    const waiting = run.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { msg?: string; level?: string })
      .filter((line) => line.msg === `waiting for RabbitMQ at 127.0.0.1:${port} (AMQP_URL)`);
    expect(waiting, run.stdout).to.have.length(1);
    expect(run.stderr).to.equal(
      `dev failed: RabbitMQ is unreachable at 127.0.0.1:${port} after 15 s (connect ECONNREFUSED 127.0.0.1:${port}); check that it runs and AMQP_URL\n`,
    );
    expect(run.stdout).to.not.include('guest:guest');
    expect(`${run.stdout}${run.stderr}`).to.not.match(/"stack"|^\s+at .+:\d+:\d+\)?$/m);
  });
});
