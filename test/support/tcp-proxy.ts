/**
 * A TCP proxy owned by one test, put between the code under test and PostgreSQL or RabbitMQ, so that the test can
 * cut that one connection (and refuse new ones) without touching anybody else's: never `rabbitmqctl
 * close_all_connections`, which cuts every client of the broker.
 *
 * Two faults: `cut` resets every connection and refuses new ones (a crash, a closed port: the client is told at
 * once); `halfOpen` goes silent without telling the client anything (a failover without a reset, a peer that
 * vanished): each open connection is closed toward the server, while its client side stays open, is never
 * answered and never closed, and new connections are accepted and held just as silent. `restore` forwards new
 * connections again; the silent ones stay silent, as a dead peer's would, until the client gives up on them.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';

/** One client connection and, while it is forwarded, its connection to the target. */
interface Pair {
  client: net.Socket;
  upstream: net.Socket | undefined;
}

export class TcpProxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<Pair>();
  /** `silent`: new connections are accepted and held without an answer (see `halfOpen`). */
  private mode: 'forward' | 'silent' = 'forward';
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** Listens on a free port (the first time) or on the same port again (after `cut`). */
  async start(): Promise<number> {
    const server = net.createServer((client) => {
      if (this.mode === 'silent') return this.hold({ client, upstream: undefined });
      const pair: Pair = { client, upstream: net.connect(this.targetPort, this.targetHost) };
      const upstream = pair.upstream!;
      this.pairs.add(pair);
      const close = () => {
        if (pair.upstream === undefined) return; // held silent: the client side stays open
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on('error', close);
      upstream.on('error', close);
      client.on('close', close);
      upstream.on('close', close);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this.port;
  }

  /** Drops every open connection and refuses new ones until `restore`. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream?.destroy();
    }
    this.pairs.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * Goes silent without a reset: every open connection stops forwarding in both directions and is closed toward
   * the target (which sees its client leave), while the client's side stays open and hears nothing more — no
   * data, no FIN, no RST; what the client sends is read and dropped. New connections are accepted and held as
   * silent until `restore` — or, with `newConnections: 'forward'`, forwarded at once: a failover whose new
   * primary answers new connections while the old ones stay dead.
   */
  halfOpen(options: { newConnections?: 'silent' | 'forward' } = {}): void {
    this.mode = options.newConnections ?? 'silent';
    for (const pair of this.pairs) this.hold(pair);
  }

  /** Forwards new connections again (listening again after `cut`); connections held silent stay so. */
  async restore(): Promise<void> {
    this.mode = 'forward';
    if (!this.server) await this.start();
  }

  async stop(): Promise<void> {
    this.mode = 'forward';
    await this.cut();
  }

  /** A URL like `original` whose host and port are this proxy's. */
  url(original: string): string {
    const url = new URL(original);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString();
  }

  /** Connections held silent right now (each one a client that has not given up on it yet). */
  get silentConnections(): number {
    return [...this.pairs].filter((pair) => pair.upstream === undefined && !pair.client.destroyed).length;
  }

  /** Keeps `pair`'s client open and unanswered; closes its upstream (a FIN toward the target). */
  private hold(pair: Pair): void {
    const { client, upstream } = pair;
    pair.upstream = undefined;
    this.pairs.add(pair);
    if (upstream) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      upstream.removeAllListeners('data');
      upstream.on('error', () => undefined);
      upstream.end();
      // Whatever the target still sends is dropped; its own close never reaches the client.
      upstream.resume();
    }
    client.removeAllListeners('close');
    client.on('error', () => undefined);
    client.on('close', () => this.pairs.delete(pair));
    // Read and dropped, so the client's writes never block: it hears nothing, whatever it sends.
    client.on('data', () => undefined);
    client.resume();
  }
}
