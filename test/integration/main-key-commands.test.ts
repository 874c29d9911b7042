/**
 * The key commands of src/main.ts (`make key`, `make key-revoke`) as an operator meets them: run as a child
 * process on the run's database, a refusal is one line on stderr that says what is wrong — never a JSON log line
 * with a stack — and the exit code says what kind of failure it was: 2 for bad usage or input, 1 for the rest.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { testDatabaseUrl } from '../support/database.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `node --import tsx src/main.ts <args>` on the run's database, logs off. */
function main(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/main.ts', ...args],
      {
        cwd: new URL('../..', import.meta.url).pathname,
        env: { ...process.env, DATABASE_URL: testDatabaseUrl(), LOG_LEVEL: 'silent' },
        timeout: 30_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The run failed with `code` and said exactly `line` on stderr, nothing on stdout, and no stack anywhere. */
function expectRefusal(run: Run, code: number, line: string): void {
  const output = `${run.stdout}${run.stderr}`;
  expect(run.code, output).to.equal(code);
  expect(run.stderr).to.equal(`${line}\n`);
  expect(run.stdout).to.equal('');
  expect(output).to.not.match(/\bat /);
  expect(output).to.not.include('"level"');
}

describe('main: key commands', function () {
  this.timeout(60_000);
  const name = `cli-${randomBytes(5).toString('hex')}`;

  it('key with an unknown role → exit 2, one line naming the role', async () => {
    expectRefusal(await main('key', name, 'admin'), 2, 'role must be client or operator');
  });

  it('key with a malformed name → exit 2, one line naming the name', async () => {
    expectRefusal(await main('key', 'no spaces', 'client'), 2, 'name must be 1-64 letters, digits, _ . -');
  });

  it('key without a name → exit 2, the usage', async () => {
    expectRefusal(await main('key'), 2, 'usage: key <client-name> [client|operator] [expires-in-days]');
  });

  it('key-revoke of a client that does not exist → exit 1, one line', async () => {
    const nobody = `nobody-${randomBytes(5).toString('hex')}`;
    expectRefusal(await main('key-revoke', nobody), 1, `no active keys for ${nobody}`);
  });

  it('key, key-revoke, then key-revoke again: issued, revoked, then nothing left to revoke', async () => {
    const issued = await main('key', name, 'operator');
    expect(issued.code, issued.stderr).to.equal(0);
    expect(issued.stdout).to.match(/^pk_op_[A-Za-z0-9_-]{43}\n$/);

    const revoked = await main('key-revoke', name);
    expect(revoked.code, revoked.stderr).to.equal(0);
    expect(revoked.stdout).to.equal(`revoked 1 key(s) of ${name}\n`);

    expectRefusal(await main('key-revoke', name), 1, `no active keys for ${name}`);
  });
});
