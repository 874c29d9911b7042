/**
 * Each role's registry: the metrics the role writes and no others (the `dev` role, every role in one process,
 * registers them all), and labelled series created at 0 by `zeroed`.
 */
import { expect } from 'chai';
import type { MetricsRole } from '../../src/metrics.js';
import { METRICS_ROLES, METRIC_OWNERS, createMetrics, zeroed } from '../../src/metrics.js';

/** The names a registry declares (`# TYPE` lines), whether or not they have samples yet. */
async function declared(roles?: readonly MetricsRole[]): Promise<Set<string>> {
  const text = await createMetrics({ defaults: false, roles }).registry.metrics();
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1]!));
}

const metricNames = (() => {
  const metrics = createMetrics({ defaults: false });
  return Object.fromEntries(
    Object.keys(METRIC_OWNERS).map((key) => [
      key,
      (metrics[key as keyof typeof METRIC_OWNERS] as unknown as { name: string }).name,
    ]),
  );
})();

describe('metrics per role', () => {
  for (const role of METRICS_ROLES) {
    it(`the ${role} registers exactly the metrics it owns`, async () => {
      const names = await declared([role]);
      const owned = Object.entries(METRIC_OWNERS)
        .filter(([, owners]) => owners.includes(role))
        .map(([key]) => metricNames[key]!);
      expect([...names].sort()).to.deep.equal(owned.sort());
    });
  }

  it('dev (every role) registers every metric, and so does the default', async () => {
    const every = Object.values(metricNames).sort();
    expect([...(await declared(METRICS_ROLES))].sort()).to.deep.equal(every);
    expect([...(await declared())].sort()).to.deep.equal(every);
  });

  it('every metric has an owner', () => {
    for (const [key, owners] of Object.entries(METRIC_OWNERS)) expect(owners, key).to.not.be.empty;
  });

  it('a metric of a role the process does not run still counts, unexported', async () => {
    const metrics = createMetrics({ defaults: false, roles: ['relay'] });
    metrics.dlqDepth.set(3);
    expect((await metrics.dlqDepth.get()).values[0]?.value).to.equal(3);
    expect(await metrics.registry.metrics()).to.not.include('payouts_dlq_depth');
  });

  it('zeroed creates labelled counters, gauges and histograms at 0', async () => {
    const metrics = createMetrics({ defaults: false });
    zeroed(metrics.sweeperRedriven, [{ status: 'created' }, { status: 'processing' }]);
    zeroed(metrics.stuckPayouts, [{ status: 'created' }]);
    zeroed(metrics.httpRequestDuration, [{ route: '/api/payouts', method: 'POST', status: '500' }]);
    const lines = (await metrics.registry.metrics()).split('\n');
    expect(lines).to.include.members([
      'payouts_sweeper_redriven_total{status="created"} 0',
      'payouts_sweeper_redriven_total{status="processing"} 0',
      'payouts_stuck{status="created"} 0',
      'http_request_duration_seconds_count{route="/api/payouts",method="POST",status="500"} 0',
    ]);
  });
});
