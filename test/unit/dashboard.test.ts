import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { parse as parseYaml } from 'yaml';
import { Counter, Gauge, Histogram, Summary } from 'prom-client';
import { createMetrics } from '../../src/metrics.js';
import type { NamedQuery } from '../support/promql.js';
import {
  ALERTS_PATH,
  DASHBOARD_PATH,
  exposedSeries,
  promqlReferences,
  readDashboardQueries,
  readRuleQueries,
  unknownReferences,
} from '../support/promql.js';

const DASHBOARD = DASHBOARD_PATH;
const ALERTS = ALERTS_PATH;

/**
 * The text a fresh registry serves after one observation in every metric, so labelled counters and
 * histograms have series (an untouched labelled metric exposes only its HELP and TYPE lines).
 */
async function exposition(): Promise<string> {
  const metrics = createMetrics();
  for (const metric of Object.values(metrics)) {
    const labelNames = (metric as { labelNames?: string[] }).labelNames ?? [];
    const labels = Object.fromEntries(labelNames.map((name) => [name, 'sample']));
    if (metric instanceof Counter) metric.inc(labels);
    else if (metric instanceof Gauge) metric.set(labels, 1);
    else if (metric instanceof Histogram || metric instanceof Summary) metric.observe(labels, 0.1);
  }
  return metrics.registry.metrics();
}

describe('dashboard and alerts', () => {
  let text: string;
  const dashboard = readDashboardQueries(DASHBOARD);
  const alerts = readRuleQueries(ALERTS);

  before(async () => {
    text = await exposition();
  });

  it('finds the queries it checks', () => {
    expect(dashboard.length).to.be.greaterThan(20);
    expect(alerts.map((query) => query.source)).to.include.members([
      'PayoutsRoleDown',
      'PayoutsOutboxStale',
      'PayoutsDeadLetters',
      'PayoutsStuck',
      'PayoutsApiErrorRate',
      'PayoutsApiLatencyHigh',
    ]);
  });

  const check = (name: string, queries: () => NamedQuery[]) =>
    it(`${name} names only series and labels the service exports`, () => {
      expect(unknownReferences(queries(), text)).to.deep.equal([]);
    });
  check('the Grafana dashboard', () => dashboard);
  check('the Prometheus alerts', () => alerts);

  it('covers every payouts_* metric on the dashboard', () => {
    const used = new Set(dashboard.flatMap(({ expr }) => promqlReferences(expr).metrics));
    const families = [...exposedSeries(text).keys()]
      .filter((series) => series.startsWith('payouts_') || series.startsWith('http_'))
      .map((series) => series.replace(/_(bucket|sum|count)$/, ''));
    const shown = (family: string) =>
      [...used].some((series) => series === family || series.startsWith(`${family}_`));
    expect([...new Set(families)].filter((family) => !shown(family))).to.deep.equal([]);
  });

  it('every panel query is narrowed by the job and instance variables', () => {
    const panels = dashboard.filter(({ expr }) => !/^\s*up\{job=~"(payouts-\.\*|\$job)"\}\s*$/.test(expr));
    expect(panels.length).to.be.greaterThan(20);
    for (const { source, expr } of panels) {
      expect(expr, source).to.include('job=~"$job"');
      expect(expr, source).to.include('instance=~"$instance"');
    }
  });

  it("every alert's runbook_url is a section of the README", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    // GitHub's anchors: a heading in lower case, punctuation dropped, spaces as dashes.
    const anchors = new Set(
      [...readme.matchAll(/^#{1,6} (.+)$/gm)].map((heading) =>
        heading[1]!
          .toLowerCase()
          .replace(/[^\w\- ]/g, '')
          .replace(/ /g, '-'),
      ),
    );
    const rules = (
      parseYaml(readFileSync(ALERTS, 'utf8')) as {
        groups: Array<{ rules: Array<{ alert: string; annotations?: { runbook_url?: string } }> }>;
      }
    ).groups.flatMap((group) => group.rules);
    expect(rules.length).to.be.greaterThan(5);
    for (const rule of rules) {
      const url = rule.annotations?.runbook_url ?? '';
      expect(url, rule.alert).to.match(/^README\.md#[\w-]+$/);
      expect([...anchors], rule.alert).to.include(url.split('#')[1]);
    }
  });
});
