/**
 * What the benchmarks share: child processes that are always stopped, free ports, readiness, the bench
 * databases, one wrk run reduced to the numbers we print, and medians. Loopback only.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { Connection } from 'rabbitmq-client';
import type * as ConfigModule from '../src/config.js';
import type * as TopologyModule from '../src/messaging/topology.js';
import type * as AmqpModule from '../src/messaging/amqp.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const LIMITS = resolve(ROOT, '../shared/limits');
export const MAIN = join(ROOT, 'dist/src/main.js');
/** The API as `make run` starts it: built, then `node dist/src/main.js api` (the Makefile's `run` target). */
export const RUN_ARGS = [join(ROOT, 'dist/src/main.js'), 'api'];
export const RESULTS = join(ROOT, 'bench/results');
export const PG_BASE = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432';

export class HarnessError extends Error {
  override name = 'HarnessError';
}

export function envInt(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min) throw new HarnessError(`${name} must be an integer ≥ ${min}`);
  return Number(raw);
}

export function dbUrl(name: string): string {
  return `${PG_BASE}/${name}`;
}

// ---------------------------------------------------------------------------------------------- processes

export interface Child {
  name: string;
  proc: ChildProcess;
  /** Everything the process wrote to stderr and stdout, for the error message when it dies. */
  output(): string;
  exited: Promise<number | null>;
}

const children = new Set<Child>();

/**
 * Starts `command args` from the project root, with this process's environment and NODE_ENV=production (as the
 * image runs) unless `onlyEnv`; the child is killed when this process ends, however it ends.
 */
export function start(
  name: string,
  command: string,
  args: string[],
  env: Record<string, string> = {},
  options: { stdoutFile?: string; onlyEnv?: boolean } = {},
): Child {
  // A file takes a chatty process's log lines (the API logs a line per request at its default level) at no cost
  // to this process, which shares the machine with it.
  const stdout = options.stdoutFile === undefined ? 'pipe' : openSync(options.stdoutFile, 'a');
  const proc = spawn(command, args, {
    cwd: ROOT,
    // `onlyEnv`: the process gets `env` and the path, nothing of this shell's settings (the API at its defaults).
    env: options.onlyEnv
      ? { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }
      : { ...process.env, NODE_ENV: 'production', ...env },
    stdio: ['ignore', stdout, 'pipe'],
  });
  if (typeof stdout === 'number') closeSync(stdout);
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-8000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<number | null>((done) => proc.on('exit', (code) => done(code)));
  const child: Child = { name, proc, output: () => output, exited };
  children.add(child);
  void exited.then(() => children.delete(child));
  return child;
}

/** SIGTERM, then SIGKILL if it is still there after `graceMs`. */
export async function stop(child: Child, graceMs = 10_000): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((child) => stop(child)));
}

process.on('exit', () => {
  for (const child of children) child.proc.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    process.stderr.write(`\n${signal}: stopping the benchmark's processes\n`);
    void stopAll().finally(() => process.exit(130));
  });
}

/** Runs a command to completion; rejects with its output when it fails. */
export async function run(
  command: string,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 120_000,
): Promise<string> {
  const child = start(`${command} ${args.join(' ')}`, command, args, env);
  let stdout = '';
  child.proc.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), timeoutMs);
  const code = await child.exited;
  clearTimeout(timer);
  if (code !== 0) throw new HarnessError(`${child.name} exited with ${code}:\n${child.output()}`);
  return stdout;
}

export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? done(address.port) : fail(new Error('no port')),
      );
    });
  });
}

/**
 * Waits until `GET path` answers: with any status (the floor answers 404 to /healthz: it is listening), or with
 * 200 when `requireOk` (a role's /readyz once its database and broker answer).
 */
export async function waitForHttp(
  child: Child,
  port: number,
  path = '/healthz',
  timeoutMs = 30_000,
  requireOk = false,
) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.proc.exitCode !== null) {
      throw new HarnessError(`${child.name} exited with ${child.proc.exitCode}:\n${child.output()}`);
    }
    try {
      const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (!requireOk || response.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new HarnessError(
    `${child.name} did not answer on port ${port} within ${timeoutMs} ms:\n${child.output()}`,
  );
}

export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

/** Whether a process with this pid exists (signal 0: nothing is sent). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * CPU time (user + system) a live process has used so far, in ms, from /proc/<pid>/stat. Unlike a profile's
 * non-idle time it does not count time the process spent runnable but descheduled, so it holds on a busy machine.
 */
export function cpuTimeMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "pid (comm) ": state is field 3, utime 14 and stime 15 (proc(5)), in USER_HZ = 100 ticks/s.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Peak resident set size of a live process, in MB (VmHWM of /proc/<pid>/status). */
export function peakRssMb(pid: number | undefined): number {
  return statusMb(pid, 'VmHWM');
}

/** Resident set size of a live process now, in MB (VmRSS); NaN once it is gone. */
export function rssMb(pid: number | undefined): number {
  try {
    return statusMb(pid, 'VmRSS');
  } catch {
    return NaN;
  }
}

function statusMb(pid: number | undefined, field: 'VmHWM' | 'VmRSS'): number {
  if (pid === undefined) return NaN;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  return match ? Number(match[1]) / 1024 : NaN;
}

/**
 * CPU time (user + system) of process `root` and of its children, with the children they have all reaped, in ms:
 * a PostgreSQL server is its postmaster (`root`) and the background processes and backends it forks; a backend
 * that has ended is counted in the postmaster's reaped time. Read-only from /proc; NaN when `root` is gone.
 */
export function processTreeCpuMs(root: number | undefined): number {
  if (root === undefined) return NaN;
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // ended meanwhile
    }
    // After "pid (comm) ": ppid is field 4; utime, stime, cutime, cstime are fields 14-17 (proc(5)), in 10 ms ticks.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(entry) !== root && Number(fields[1]) !== root) continue;
    total += (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * 10;
  }
  return total;
}

/**
 * The process listening on TCP `port` (the default RabbitMQ node on 5672, whatever other brokers run beside it):
 * the socket's inode from /proc/net/tcp{,6}, then the process holding it. Undefined when none is found.
 */
export function pidListeningOn(port: number): number | undefined {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is "ADDR:PORT" in hex; state 0A is LISTEN; the inode is field 10.
      if (f[3] === '0A' && parseInt(f[1]?.split(':')[1] ?? '', 16) === port) inodes.add(f[9]!);
    }
  }
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/fd/${fd}`));
        if (match && inodes.has(match[1]!)) return Number(entry);
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

/** CPU time of the children this process has waited for (`wrk`, the commands it ran), in ms: cutime + cstime. */
export function reapedChildrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

/** The machine's CPU time so far, busy and in all, in ticks summed over every core (/proc/stat). */
export function cpuTimes(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((sum, value) => sum + value, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** Share of the machine's CPU busy over `ms` (0..1), from /proc/stat. */
export async function cpuBusy(ms = 1000): Promise<number> {
  const a = cpuTimes();
  await sleep(ms);
  const b = cpuTimes();
  return b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;
}

/**
 * Called between runs, when none of the benchmark's processes works: waits while something else (another
 * engineer's tests) keeps the CPU busy, up to BENCH_MAX_WAIT_SECONDS, and returns the busy share last seen
 * so every run records how quiet the machine was when it started.
 */
export async function waitForQuietMachine(): Promise<number> {
  const limit = Number(process.env.BENCH_MAX_BUSY ?? '0.25');
  const until = Date.now() + envInt('BENCH_MAX_WAIT_SECONDS', 180) * 1000;
  let busy = await cpuBusy();
  while (busy > limit && Date.now() < until) {
    process.stdout.write(`  (machine ${(busy * 100).toFixed(0)}% busy with other work: waiting…)\n`);
    await sleep(4000);
    busy = await cpuBusy();
  }
  if (busy > limit)
    process.stdout.write(`  !! machine still ${(busy * 100).toFixed(0)}% busy: this run may be noisy\n`);
  return busy;
}

// ---------------------------------------------------------------------------------------------- databases

export async function withPg<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Drops and recreates a database that belongs to the benchmarks (its name must start with `payouts_bench`). */
export async function recreateDatabase(name: string): Promise<string> {
  if (!/^payouts_bench[a-z0-9_]*$/.test(name)) throw new HarnessError(`refusing to recreate ${name}`);
  await withPg(dbUrl('postgres'), async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${name}`);
  });
  return dbUrl(name);
}

/**
 * A module of the compiled service (dist/), typed by its source: the benchmarks run what `make build` made,
 * the same code the child processes run, never the sources under tsx (which may be ahead of dist/).
 */
export async function fromDist<T>(source: string): Promise<T> {
  return (await import(pathToFileURL(join(ROOT, 'dist', source.replace(/\.ts$/, '.js'))).href)) as T;
}

/**
 * The AMQP namespace of this benchmark process: `migrate` declares the topology, so every benchmark declares it
 * under its own suffix (never the dev queues), with `x-expires` as a backstop, and deletes it when done.
 */
export const BENCH_NAMESPACE = `.bench-${process.pid}`;
export const BENCH_AMQP_ENV = { AMQP_NAMESPACE: BENCH_NAMESPACE, AMQP_QUEUE_EXPIRES_MS: '600000' };

/** Deletes the queues and exchanges `migrate` and the roles declared under BENCH_NAMESPACE. */
export async function deleteBenchTopology(): Promise<void> {
  const { loadConfig } = await fromDist<typeof ConfigModule>('src/config.ts');
  const { deleteTopology } = await fromDist<typeof TopologyModule>('src/messaging/topology.ts');
  const { topologyOptions } = await fromDist<typeof AmqpModule>('src/messaging/amqp.ts');
  const config = loadConfig({ ...process.env, ...BENCH_AMQP_ENV });
  const connection = new Connection({ url: config.amqpUrl, retryLow: 100, retryHigh: 200 });
  try {
    // Every queue `migrate` declared, the webhooks' delay queues too: left behind, each idle quorum queue keeps
    // costing the broker CPU until it expires, and back-to-back runs would slow each other down.
    await deleteTopology(connection, topologyOptions(config));
  } finally {
    await connection.close();
  }
}

/**
 * A fresh, migrated service database and a key of the client `bench` on it. `fill` runs between the migration and
 * the key (a seed).
 */
export async function prepareServiceDatabase(
  name: string,
  fill?: (url: string) => Promise<void>,
): Promise<{ url: string; apiKey: string }> {
  const url = await recreateDatabase(name);
  await run('node', [MAIN, 'migrate'], serviceEnv(url));
  if (fill) await fill(url);
  return { url, apiKey: await issueKey(url, 'bench') };
}

/** A new key of the named client (created on its first key): `main key` prints it as its last line. */
export async function issueKey(url: string, client: string): Promise<string> {
  const out = await run('node', [MAIN, 'key', client, 'client'], serviceEnv(url));
  const key = out.trim().split('\n').pop() ?? '';
  if (!key.startsWith('pk_')) throw new HarnessError(`no API key in the output of \`main key\`: ${out}`);
  return key;
}

function serviceEnv(url: string): Record<string, string> {
  return { ...BENCH_AMQP_ENV, DATABASE_URL: url, LOG_LEVEL: 'warn' };
}

export async function count(url: string, sql: string): Promise<number> {
  return withPg(url, async (client) => {
    const { rows } = await client.query<{ n: string }>(sql);
    return Number(rows[0]?.n ?? 0);
  });
}

// ---------------------------------------------------------------------------------------------- load

export interface LoadSpec {
  port: number;
  method: 'GET' | 'POST';
  /** A fixed path, or paths of which every request takes one at random. */
  path: string | readonly string[];
  headers: Record<string, string>;
  body?: string;
  /** A fresh `Idempotency-Key` on every request. */
  freshIdempotencyKey?: boolean;
  seconds: number;
  connections: number;
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  total: number;
  ok: number;
  /** wrk's status errors: answers of 400 and above (the API answers no 3xx to these requests). */
  non2xx: number;
  errors: number;
  timeouts: number;
}

/** A Lua string literal (wrk's scripts are Lua). */
const lua = (text: string) => JSON.stringify(text);

/**
 * wrk's script for `spec`: its method, headers and body; a path at random from the list; a fresh
 * `Idempotency-Key` per request (this process's id, the run's and a counter: unique across runs and rounds); at
 * the end one line of JSON with the counts and the latency percentiles (in microseconds).
 */
function wrkScript(spec: LoadSpec, run: string): string {
  const paths = typeof spec.path === 'string' ? [spec.path] : spec.path;
  return [
    `wrk.method = ${lua(spec.method)}`,
    ...Object.entries(spec.headers).map(([name, value]) => `wrk.headers[${lua(name)}] = ${lua(value)}`),
    spec.body === undefined ? '' : `wrk.body = ${lua(spec.body)}`,
    `local paths = { ${paths.map(lua).join(', ')} }`,
    `local fresh = ${spec.freshIdempotencyKey ? 'true' : 'false'}`,
    'local sent = 0',
    'request = function()',
    '  sent = sent + 1',
    `  if fresh then wrk.headers["idempotency-key"] = ${lua(`bench-${process.pid}-${run}-`)} .. sent end`,
    '  return wrk.format(nil, paths[math.random(#paths)])',
    'end',
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format(\'WRK_RESULT {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' +
      '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\\n\',',
    '    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,',
    '    latency:percentile(50), latency:percentile(99)))',
    'end',
    '',
  ].join('\n');
}

let runs = 0;

/**
 * One load: Debian's `wrk`, one thread, `spec.connections` connections for `spec.seconds`, every request as
 * `spec` says. Latency is in milliseconds; `non2xx` counts wrk's "non-2xx or 3xx" answers, `errors` its
 * connect, read and write errors.
 */
export async function load(spec: LoadSpec): Promise<LoadResult> {
  if (spawnSync('wrk', ['-v']).error) {
    throw new HarnessError(
      'wrk is not installed: apt-get install wrk (the load generator of every benchmark)',
    );
  }
  runs += 1;
  const dir = mkdtempSync(join(tmpdir(), 'payouts-wrk-'));
  const script = join(dir, 'load.lua');
  writeFileSync(script, wrkScript(spec, String(runs)));
  try {
    const out = await run('wrk', [
      '-t1',
      `-c${spec.connections}`,
      `-d${spec.seconds}s`,
      '--timeout',
      '10s',
      '-s',
      script,
      `http://127.0.0.1:${spec.port}`,
    ]);
    const line = out.split('\n').find((text) => text.startsWith('WRK_RESULT '));
    if (!line) throw new HarnessError(`wrk printed no result:\n${out}`);
    const r = JSON.parse(line.slice('WRK_RESULT '.length)) as Record<string, number>;
    const errors = r.connect! + r.read! + r.write!;
    return {
      rps: r.requests! / (r.duration_us! / 1e6),
      p50: r.p50_us! / 1000,
      p99: r.p99_us! / 1000,
      total: r.requests!,
      ok: r.requests! - r.status! - errors - r.timeout!,
      non2xx: r.status!,
      errors,
      timeouts: r.timeout!,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function median(values: number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function fmt(value: number, digits = 1): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

export function verdict(ok: boolean): string {
  return ok ? 'OK' : 'MISSED';
}

export function writeResults(kind: string, data: unknown): string {
  if (!existsSync(RESULTS)) mkdirSync(RESULTS, { recursive: true });
  const file = join(RESULTS, `${kind}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return file;
}

/** A payout the service and the floor both accept: the body of every bench create, and drain's in-process input. */
export const CREATE_INPUT = {
  amount: '12.34',
  currency: 'EUR',
  recipient: { type: 'iban', iban: 'DE89370400440532013000', holder_name: 'Jane Doe' },
  description: 'bench',
};

export const CREATE_BODY = JSON.stringify(CREATE_INPUT);

/** Log level of the service's processes under a benchmark (`BENCH_LOG_LEVEL`, default warn). */
export const BENCH_LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'warn';

/** Connections of every HTTP load, the service's and the floor's (`BENCH_CONNECTIONS`). */
export const CONNECTIONS = envInt('BENCH_CONNECTIONS', 32);

/**
 * Environment of the API as `make run` starts it, with every setting at its default but where it listens (a free
 * port on loopback, its metrics port picked freely) and its database.
 */
export function runEnv(port: number, databaseUrl: string): Record<string, string> {
  return {
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    ...BENCH_AMQP_ENV,
    METRICS_PORT: '0',
  };
}

/**
 * Environment of a pipeline role under a benchmark (relay, worker, sweeper, webhooks): the bench's queues, a provider without
 * delay or faults, the bench's log level.
 */
export function pipelineEnv(databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    // Its own queues; if the run dies before deleting them, the broker removes them after 10 idle minutes.
    ...BENCH_AMQP_ENV,
    PROVIDER_DELAY_MS: '0',
    PROVIDER_FAULT_RATE: '0',
    LOG_LEVEL: BENCH_LOG_LEVEL,
    ...extra,
  };
}

/** Starts `node dist/src/main.js <role>` named `name`, its ops port free, and waits until it is ready. */
export async function startPipelineRole(
  name: string,
  role: 'relay' | 'worker' | 'sweeper' | 'webhooks',
  databaseUrl: string,
  options: { env?: Record<string, string>; nodeArgs?: string[] } = {},
): Promise<Child> {
  const port = await freePort();
  const child = start(
    name,
    'node',
    [...(options.nodeArgs ?? []), MAIN, role],
    pipelineEnv(databaseUrl, { ...options.env, METRICS_PORT: String(port) }),
  );
  await waitForHttp(child, port, '/readyz', 60_000, true);
  return child;
}

/** Where the API's log lines of a `make bench` run go (bench/results/, gitignored). */
export function apiLogFile(): string {
  if (!existsSync(RESULTS)) mkdirSync(RESULTS, { recursive: true });
  return join(RESULTS, `api-${process.pid}.log`);
}

// ---------------------------------------------------------------------------------------------- problems

/** What went wrong in this run (non-2xx, replays, a drain that did not finish…): recorded in the results. */
export const problems: string[] = [];

/** Records a problem and prints it loudly at once. */
export function loud(message: string): void {
  problems.push(message);
  process.stdout.write(`\n!!!!!!!! ${message}\n\n`);
}

/** Lists every problem again at the end of the run and makes its exit status 1; nothing when there were none. */
export function reportProblems(): void {
  if (problems.length === 0) return;
  process.stdout.write(
    `\n!!!!!!!! ${problems.length} problem(s):\n${problems.map((p) => `  - ${p}`).join('\n')}\n`,
  );
  process.exitCode = 1;
}

/** The create load of `make bench` and of the profiles: one body, a fresh `Idempotency-Key` per request. */
export function createLoad(
  headers: Record<string, string>,
  seconds: number,
  connections: number,
): Omit<LoadSpec, 'port'> {
  return {
    method: 'POST',
    path: '/api/payouts',
    headers,
    body: CREATE_BODY,
    freshIdempotencyKey: true,
    seconds,
    connections,
  };
}

/**
 * Runs a bench script's `main`: reports a failure with its stack and exit code 1, and always stops every child
 * process (and, with `deleteTopology`, the bench's AMQP queues), also on error.
 */
export async function runMain(
  name: string,
  main: () => Promise<void>,
  options: { deleteTopology?: boolean } = {},
): Promise<void> {
  try {
    await main();
  } catch (error) {
    process.stderr.write(
      `\n${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  } finally {
    await stopAll();
    if (options.deleteTopology) {
      await deleteBenchTopology().catch((error: unknown) => {
        process.stderr.write(`could not delete the bench queues: ${String(error)}\n`);
      });
    }
  }
}
