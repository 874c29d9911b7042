/**
 * A real Prometheus for a test: Debian's `/usr/bin/prometheus` on a free port of 127.0.0.1, its storage in a
 * temporary directory removed at the end, scraping the given targets every second. The test then asks it what
 * Grafana and the alert rules would ask, over its HTTP API, so a query that does not parse, names a series nobody
 * exports or finds no data fails here rather than on a dashboard.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait.js';

/** Debian's package, which `.ci/run` installs when it is missing. */
export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';

/** Prometheus's answer to an instant query: a vector of samples, each with its labels. */
export interface QueryAnswer {
  status: 'success' | 'error';
  error?: string;
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; value?: [number, string] }> };
}

export interface RunningPrometheus {
  url: string;
  /** Evaluates `expr` now (`/api/v1/query`); a query Prometheus refuses answers `status: 'error'`, never throws. */
  query(expr: string): Promise<QueryAnswer>;
  /** Resolves once every target has been scraped successfully (`up == 1`) at least once. */
  waitForTargets(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** A port nothing listens on right now (the kernel's choice for port 0, released at once). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Starts Prometheus scraping `targets` (job name → ports on 127.0.0.1) every second. Fails, naming the package,
 * when Prometheus is not installed: the test that needs it must not pass without it.
 */
export async function startPrometheus(targets: Record<string, number[]>): Promise<RunningPrometheus> {
  if (!existsSync(PROMETHEUS_BIN)) {
    throw new Error(
      `Prometheus is not installed (${PROMETHEUS_BIN} is missing): install Debian's package with ` +
        '`apt-get install prometheus` (.ci/run does), or set PROMETHEUS_BIN to a prometheus binary.',
    );
  }
  const dir = await mkdtemp(join(tmpdir(), 'payouts-prometheus-'));
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    scrape_configs: Object.entries(targets).map(([job, ports]) => ({
      job_name: job,
      static_configs: [{ targets: ports.map((port) => `127.0.0.1:${port}`) }],
    })),
  };
  // JSON is YAML: no serializer needed for the configuration file.
  await writeFile(join(dir, 'prometheus.yml'), JSON.stringify(config, null, 2));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const child: ChildProcess = spawn(
    PROMETHEUS_BIN,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  const query = async (expr: string): Promise<QueryAnswer> => {
    const response = await fetch(`${url}/api/v1/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: expr }),
    });
    return (await response.json()) as QueryAnswer;
  };

  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${output}`);
        return fetch(`${url}/-/ready`).then(
          (response) => response.ok,
          () => false,
        );
      },
      { timeoutMs: 30_000, message: () => `prometheus never became ready: ${output}` },
    );
  } catch (error) {
    await stop();
    throw error;
  }

  const expected = Object.values(targets).flat().length;
  return {
    url,
    query,
    async waitForTargets(timeoutMs = 30_000) {
      await waitFor(
        async () => {
          const answer = await query('count(up == 1)');
          return Number(answer.data?.result[0]?.value?.[1] ?? 0) === expected;
        },
        {
          timeoutMs,
          intervalMs: 250,
          message: async () => `not every target is up: ${JSON.stringify((await query('up')).data?.result)}`,
        },
      );
    },
    stop,
  };
}
