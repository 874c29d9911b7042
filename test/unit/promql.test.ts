/** The PromQL reader of test/support/promql.ts that the dashboard and alert checks rely on. */
import { expect } from 'chai';
import { promqlReferences, unknownReferences } from '../support/promql.js';

describe('promqlReferences', () => {
  it('reads metric names past functions, grouping, matchers, ranges and Grafana variables', () => {
    expect(
      promqlReferences(
        'histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{status=~"5..", route!="by(x)"}[$__rate_interval])))',
      ),
    ).to.deep.equal({ metrics: ['http_request_duration_seconds_bucket'], labels: ['le', 'route', 'status'] });
  });

  it('reads both sides of binary operators and absent()', () => {
    expect(
      promqlReferences(
        'sum(rate(a_total[5m] offset 1h)) / on (job) group_left sum(b) > 1e3 or absent(up{job="x"})',
      ),
    ).to.deep.equal({ metrics: ['a_total', 'b', 'up'], labels: ['job'] });
  });

  it('reports names a registry does not export and labels none of the series carries', () => {
    const exposed = [
      '# TYPE http_request_duration_seconds histogram',
      'http_request_duration_seconds_count{route="/x",status="200"} 1',
      '# TYPE payouts_stuck gauge',
      '',
    ].join('\n');
    expect(
      unknownReferences(
        [
          { source: 'ok', expr: 'sum by (route) (rate(http_request_duration_seconds_count[5m]))' },
          { source: 'typo', expr: 'rate(http_requests_total[5m])' },
          { source: 'label', expr: 'sum by (path) (http_request_duration_seconds_count)' },
          // Declared without samples yet: the name is known, its labels cannot be checked.
          {
            source: 'declared',
            expr: 'max by (status) (payouts_stuck) + sum(http_request_duration_seconds_sum)',
          },
        ],
        exposed,
      ),
    ).to.deep.equal([
      'typo: http_requests_total is not exported',
      'label: label "path" is on none of http_request_duration_seconds_count',
    ]);
  });
});
