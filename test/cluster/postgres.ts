/**
 * A PostgreSQL primary and its synchronous standby of their own, for test/cluster/database.ts: two Debian clusters
 * (`pg_createcluster`, version 15) named after this process, on free ports, trust authentication on loopback. The
 * standby is a `pg_basebackup -R` of the primary into its emptied data directory; the primary's config file names
 * it in `synchronous_standby_names`, so a commit is answered only once the standby has it. The default cluster
 * (15/main on 5432) is never touched. Both clusters are dropped when the scenario ends, however it ends (success,
 * error, SIGINT, SIGTERM), and clusters a killed earlier run left behind are dropped when the next one starts.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { HarnessError, freePort, isAlive, run, sleep, withPg } from '../../bench/lib.js';

export const PG_VERSION = process.env.CLUSTER_PG_VERSION ?? '15';
const PREFIX = 'payouts-ha-';

export interface Cluster {
  name: string;
  port: number;
  dataDirectory: string;
}

/** postgres://postgres@127.0.0.1:<port>/<database> */
export function clusterUrl(cluster: Cluster, database = 'postgres'): string {
  return `postgres://postgres@127.0.0.1:${cluster.port}/${database}`;
}

const created = new Set<string>();

/** Drops a cluster this process created, stopping it first (synchronous: also runs in the `exit` handler). */
function dropNow(name: string): void {
  spawnSync('pg_dropcluster', ['--stop', PG_VERSION, name], { stdio: 'ignore' });
  created.delete(name);
}

process.on('exit', () => {
  for (const name of created) dropNow(name);
});

/** Drops both clusters (idempotent). */
export function dropClusters(): void {
  for (const name of [...created]) dropNow(name);
}

interface ListedCluster {
  name: string;
  port: number;
  status: string;
  dataDirectory: string;
}

function listClusters(): ListedCluster[] {
  const out = spawnSync('pg_lsclusters', ['-h'], { encoding: 'utf8' }).stdout ?? '';
  return out
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[0] === PG_VERSION && fields.length >= 6)
    .map((fields) => ({
      name: fields[1]!,
      port: Number(fields[2]),
      status: fields[3]!,
      dataDirectory: fields[5]!,
    }));
}

/** Drops `payouts-ha-<pid>-*` clusters whose process is gone (a run killed with SIGKILL). */
export function dropLeftovers(): string[] {
  const dropped: string[] = [];
  for (const cluster of listClusters()) {
    const match = new RegExp(`^${PREFIX}(\\d+)-[ab]$`).exec(cluster.name);
    if (!match || isAlive(Number(match[1]))) continue;
    spawnSync('pg_dropcluster', ['--stop', PG_VERSION, cluster.name], { stdio: 'ignore' });
    dropped.push(cluster.name);
  }
  return dropped;
}

const ctl = (name: string, ...args: string[]) => run('pg_ctlcluster', [PG_VERSION, name, ...args]);
const asPostgres = (command: string, args: string[]) =>
  run('runuser', ['-u', 'postgres', '--', command, ...args]);

/** A new, stopped cluster; trust authentication (local and host, replication included): loopback only. */
async function createCluster(name: string): Promise<Cluster> {
  const port = await freePort();
  created.add(name);
  await run('pg_createcluster', [
    PG_VERSION,
    name,
    '--port',
    String(port),
    '--start-conf',
    'manual',
    '--',
    '--auth=trust',
  ]);
  const listed = listClusters().find((cluster) => cluster.name === name);
  if (!listed) throw new HarnessError(`pg_createcluster made no cluster ${name}`);
  return { name, port, dataDirectory: listed.dataDirectory };
}

/**
 * Empties a data directory, keeping the directory itself (its owner and mode are what the cluster's
 * configuration expects; pg_basebackup wants it empty).
 */
function emptyDirectory(dir: string): void {
  for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true });
}

export async function syncState(primary: Cluster): Promise<string | undefined> {
  return withPg(clusterUrl(primary), async (client) => {
    const { rows } = await client.query<{ sync_state: string }>('SELECT sync_state FROM pg_stat_replication');
    return rows[0]?.sync_state;
  });
}

async function waitForSync(primary: Cluster, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let state: string | undefined;
  while (Date.now() < until) {
    state = await syncState(primary);
    if (state === 'sync') return;
    await sleep(100);
  }
  throw new HarnessError(
    `the standby is not synchronous after ${timeoutMs} ms (sync_state: ${state ?? 'none'})`,
  );
}

export interface Pair {
  primary: Cluster;
  standby: Cluster;
  setupMs: number;
}

/**
 * Creates and starts the primary, sets `synchronous_standby_names` in its config file (`pg_conftool`, the value
 * unquoted: pg_conftool quotes it), clones it into the standby with `pg_basebackup -R` (standby.signal and
 * primary_conninfo), starts the standby and waits for `pg_stat_replication.sync_state = 'sync'`.
 */
export async function createSyncPair(): Promise<Pair> {
  const t0 = performance.now();
  const primary = await createCluster(`${PREFIX}${process.pid}-a`);
  // Any standby is the synchronous one: there is one, and its application_name is its cluster_name ("15/…").
  await run('pg_conftool', [PG_VERSION, primary.name, 'set', 'synchronous_standby_names', '*']);
  await ctl(primary.name, 'start');

  const standby = await createCluster(`${PREFIX}${process.pid}-b`);
  emptyDirectory(standby.dataDirectory);
  await asPostgres('pg_basebackup', [
    '--host=127.0.0.1',
    `--port=${primary.port}`,
    '--username=postgres',
    `--pgdata=${standby.dataDirectory}`,
    '--write-recovery-conf',
    '--wal-method=stream',
    '--checkpoint=fast',
  ]);
  await ctl(standby.name, 'start');
  await waitForSync(primary);
  return { primary, standby, setupMs: performance.now() - t0 };
}

/** The primary dies as on a crash: `stop -m immediate` (no checkpoint, every connection cut). */
export async function killImmediately(cluster: Cluster): Promise<number> {
  const t0 = performance.now();
  await ctl(cluster.name, 'stop', '-m', 'immediate');
  return performance.now() - t0;
}

/** Promotes the standby and waits until it accepts writes; the ms it took. */
export async function promote(standby: Cluster): Promise<number> {
  const t0 = performance.now();
  await ctl(standby.name, 'promote');
  await withPg(clusterUrl(standby), async (client) => {
    const { rows } = await client.query<{ recovering: boolean }>('SELECT pg_is_in_recovery() AS recovering');
    if (rows[0]?.recovering) throw new HarnessError(`${standby.name} is still in recovery after promote`);
  });
  return performance.now() - t0;
}
