/**
 * `AMQP_HOSTS`: the nodes of a RabbitMQ cluster, which every connection of the service tries in turn. Two "nodes"
 * here: a proxy owned by the test in front of the local broker (listed first) and the broker itself. When the
 * proxy is cut, as a node lost, the role's connection comes back through the other node within seconds and carries
 * messages again. (A real three-node cluster is not started by this test.)
 */
import { expect } from 'chai';
import { openBrokerConnection } from '../../../src/messaging/amqp.js';
import { createLogger } from '../../../src/logger.js';
import { consumerConfig, testNamespace } from '../../support/consumers.js';
import { TcpProxy } from '../../support/tcp-proxy.js';

describe('consumers: a broker of several nodes (AMQP_HOSTS)', function () {
  this.timeout(30_000);
  const proxy = new TcpProxy('127.0.0.1', 5672);
  after(() => proxy.cut());

  it('connects to the first node, and to the next one when it is lost', async () => {
    const port = await proxy.start();
    const config = consumerConfig(testNamespace(), { AMQP_HOSTS: `127.0.0.1:${port},127.0.0.1:5672` });
    const connection = openBrokerConnection(config, createLogger({ level: 'silent' }), 'nodes-test');
    try {
      await connection.onConnect(10_000, true);
      const reconnected = new Promise<number>((resolve) => {
        const lost = Date.now();
        connection.once('connection', () => resolve(Date.now() - lost));
      });
      // The first node goes away: its connections are reset and new ones refused.
      await proxy.cut();
      const tookMs = await reconnected;
      expect(tookMs, 'back through the other node').to.be.below(5_000);

      const queue = `payouts.nodes-test${config.amqpNamespace}`;
      const channel = await connection.acquire();
      try {
        await channel.queueDeclare({ queue, exclusive: true });
        await channel.basicPublish({ routingKey: queue }, 'after the node was lost');
        const message = await channel.basicGet({ queue, noAck: true });
        expect(String(message?.body)).to.equal('after the node was lost');
      } finally {
        await channel.close();
      }
    } finally {
      await connection.close();
    }
  });
});
