/**
 * HAProxy in front of local backends, for the cluster scenarios: a process of its own (Debian's /usr/sbin/haproxy,
 * foreground), its own config and admin socket in a temporary directory, listening on a free loopback port. The
 * runtime API repoints a server (`set server … addr`), cuts its sessions, enables or disables it, and reads the
 * per-server counters (`show stat`). Generic: PostgreSQL behind it in TCP mode (test/cluster/database.ts), two API
 * processes in HTTP mode (test/cluster/processes.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Child } from '../../bench/lib.js';
import { HarnessError, freePort, sleep, start, stop } from '../../bench/lib.js';

export const HAPROXY = process.env.HAPROXY_BIN ?? '/usr/sbin/haproxy';
/** The one backend of every proxy this module starts. */
export const BACKEND = 'be';

export interface ServerSpec {
  name: string;
  port: number;
  /** Starts disabled (in maintenance): no connection goes to it until `enable`. */
  disabled?: boolean;
}

export interface ProxyOptions {
  /** `tcp`: bytes through (PostgreSQL); `http`: requests balanced one by one, counted per server. */
  mode: 'tcp' | 'http';
  servers: ServerSpec[];
  /**
   * Connection attempts HAProxy makes again after a refused one, each after a turn-around of up to a second
   * (HAProxy's default: 3). 0 in front of PostgreSQL: during a failover a refused connection fails at once, and the
   * pool's next attempt goes to wherever the proxy points by then, instead of waiting in HAProxy for the old address.
   */
  retries?: number;
}

/** One row of `show stat`: the counters this project reads, by HAProxy's column names. */
export interface StatRow {
  pxname: string;
  svname: string;
  /** Sessions (connections) in total. */
  stot: number;
  /** HTTP requests in total (HTTP mode; 0 in TCP mode). */
  req_tot: number;
  hrsp_2xx: number;
  hrsp_4xx: number;
  hrsp_5xx: number;
  status: string;
}

export interface Proxy {
  port: number;
  /** One runtime API command; its answer. */
  command(line: string): Promise<string>;
  /** New connections of `server` go to 127.0.0.1:`port`; its open sessions are cut. Returns the ms it took. */
  repoint(server: string, port: number): Promise<number>;
  enable(server: string): Promise<void>;
  /** No new connection goes to `server`; its open sessions are cut. */
  disable(server: string): Promise<void>;
  stats(): Promise<StatRow[]>;
  stop(): Promise<void>;
}

function configText(options: ProxyOptions, port: number, socket: string): string {
  const http = options.mode === 'http';
  return [
    'global',
    `  stats socket ${socket} mode 600 level admin`,
    '  maxconn 4096',
    'defaults',
    `  mode ${options.mode}`,
    '  timeout connect 2s',
    ...(options.retries === undefined ? [] : [`  retries ${options.retries}`]),
    // Idle pooled connections (PostgreSQL) and keep-alive clients stay up as long as the scenario runs.
    '  timeout client 1h',
    '  timeout server 1h',
    ...(http ? ['  timeout http-request 10s', '  timeout http-keep-alive 1h'] : []),
    'frontend fe',
    `  bind 127.0.0.1:${port}`,
    `  default_backend ${BACKEND}`,
    `backend ${BACKEND}`,
    '  balance roundrobin',
    ...options.servers.map(
      (server) => `  server ${server.name} 127.0.0.1:${server.port}${server.disabled ? ' disabled' : ''}`,
    ),
    '',
  ].join('\n');
}

/** Sends one command to the admin socket (non-interactive: HAProxy answers and closes). */
function socketCommand(socket: string, line: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((done, fail) => {
    const connection = createConnection(socket);
    let answer = '';
    const timer = setTimeout(() => {
      connection.destroy();
      fail(new HarnessError(`HAProxy did not answer "${line}" within ${timeoutMs} ms`));
    }, timeoutMs);
    connection.on('connect', () => connection.write(`${line}\n`));
    connection.on('data', (chunk: Buffer) => (answer += chunk.toString('utf8')));
    connection.on('error', (error) => {
      clearTimeout(timer);
      fail(error);
    });
    connection.on('end', () => {
      clearTimeout(timer);
      done(answer);
    });
  });
}

/** `show stat`'s CSV (a header line starting with "# ") as rows. */
export function parseStat(csv: string): StatRow[] {
  const [header, ...lines] = csv.trim().split('\n');
  const columns = (header ?? '').replace(/^# /, '').split(',');
  return lines.map((line) => {
    const values = line.split(',');
    const at = (name: string) => values[columns.indexOf(name)] ?? '';
    return {
      pxname: at('pxname'),
      svname: at('svname'),
      stot: Number(at('stot') || 0),
      req_tot: Number(at('req_tot') || 0),
      hrsp_2xx: Number(at('hrsp_2xx') || 0),
      hrsp_4xx: Number(at('hrsp_4xx') || 0),
      hrsp_5xx: Number(at('hrsp_5xx') || 0),
      status: at('status'),
    };
  });
}

/** The answer of a command that changes state: empty, or a line HAProxy prints on success. */
function expectAccepted(line: string, answer: string): void {
  const text = answer.trim();
  if (text === '' || /changed|no need to change/i.test(text)) return;
  throw new HarnessError(`HAProxy refused "${line}": ${text}`);
}

async function waitForSocket(child: Child, socket: string): Promise<void> {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    if (child.proc.exitCode !== null) throw new HarnessError(`haproxy exited:\n${child.output()}`);
    try {
      if ((await socketCommand(socket, 'show info', 1000)).includes('Name: HAProxy')) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new HarnessError(`haproxy's admin socket did not answer:\n${child.output()}`);
}

/** Starts HAProxy in front of `options.servers` on a free port; `stop` ends it and removes its directory. */
export async function startProxy(name: string, options: ProxyOptions): Promise<Proxy> {
  const dir = mkdtempSync(join(tmpdir(), 'payouts-haproxy-'));
  const socket = join(dir, 'admin.sock');
  const config = join(dir, 'haproxy.cfg');
  const port = await freePort();
  writeFileSync(config, configText(options, port, socket));
  // -db: foreground, no daemon, so the harness owns the process and kills it when it ends.
  const child = start(name, HAPROXY, ['-db', '-f', config]);
  try {
    await waitForSocket(child, socket);
  } catch (error) {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const command = (line: string) => socketCommand(socket, line);
  const change = async (line: string) => expectAccepted(line, await command(line));
  return {
    port,
    command,
    async repoint(server, target) {
      const t0 = performance.now();
      await change(`set server ${BACKEND}/${server} addr 127.0.0.1 port ${target}`);
      await change(`shutdown sessions server ${BACKEND}/${server}`);
      return performance.now() - t0;
    },
    enable: (server) => change(`enable server ${BACKEND}/${server}`),
    async disable(server) {
      await change(`disable server ${BACKEND}/${server}`);
      await change(`shutdown sessions server ${BACKEND}/${server}`);
    },
    stats: async () => parseStat(await command('show stat')),
    async stop() {
      await stop(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
