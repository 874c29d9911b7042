/**
 * Just enough PromQL reading to answer "which series and labels does this query name?", so a test can hold
 * the Grafana dashboard and the Prometheus alerts to what the service really exports. Not a parser: it blanks
 * out what cannot be a metric name (strings, durations, Grafana variables), takes label names from matchers
 * and grouping clauses, and keeps every remaining identifier that is not a function, keyword or number.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The Grafana dashboard and the Prometheus alert rules the tests hold to the exported metrics. */
export const DASHBOARD_PATH = join(ROOT, 'deploy/grafana/dashboards/payouts.json');
export const ALERTS_PATH = join(ROOT, 'deploy/prometheus/alerts.yml');

/** Series Prometheus itself adds to every scrape target; a query may name them without the service exporting them. */
export const PROMETHEUS_SYNTHETIC_SERIES: ReadonlySet<string> = new Set([
  'up',
  'scrape_duration_seconds',
  'scrape_samples_scraped',
  'scrape_samples_post_metric_relabeling',
  'scrape_series_added',
  'ALERTS',
  'ALERTS_FOR_STATE',
]);

/** Labels Prometheus attaches to every scraped series. */
export const PROMETHEUS_TARGET_LABELS: ReadonlySet<string> = new Set(['job', 'instance']);

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'and',
  'or',
  'unless',
  'atan2',
  'inf',
  'nan',
]);

const GROUPING = /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;
const MATCHERS = /\{([^}]*)\}/g;
const IDENTIFIER = /(?<![\w.:$])[a-zA-Z_:][\w:]*/g;

export interface PromqlReferences {
  metrics: string[];
  labels: string[];
}

/** Replaces quoted strings with empty ones so their contents are never read as names. */
function blankStrings(expr: string): string {
  return expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
}

/** Grafana's template variables (`$__rate_interval`, `${route}`, `[[var]]`) become a plain duration or value. */
function blankGrafanaVariables(expr: string): string {
  return expr.replace(/\$\{[^}]*\}|\$\w+|\[\[[^\]]*\]\]/g, '1m');
}

/** The metric names and label names a PromQL expression refers to, sorted and without repeats. */
export function promqlReferences(expression: string): PromqlReferences {
  let expr = blankGrafanaVariables(blankStrings(expression));
  const labels = new Set<string>();
  expr = expr.replace(GROUPING, (_match, _keyword: string, list: string) => {
    for (const label of list.split(',')) if (label.trim()) labels.add(label.trim());
    return ' ';
  });
  expr = expr.replace(MATCHERS, (_match, body: string) => {
    for (const matcher of body.split(',')) {
      const name = /^\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)/.exec(matcher);
      if (name) labels.add(name[1]!);
    }
    return ' ';
  });
  // Range selectors, subqueries and offsets hold durations (`[5m]`, `[1h:1m]`, `offset 5m`), never names.
  expr = expr.replace(/\[[^\]]*\]/g, ' ').replace(/\boffset\s+-?[\dsmhdwy]+/g, ' ');
  const metrics = new Set<string>();
  for (const match of expr.matchAll(IDENTIFIER)) {
    const name = match[0];
    const rest = expr.slice(match.index + name.length);
    if (/^\s*\(/.test(rest)) continue; // a function or an aggregation operator
    if (KEYWORDS.has(name.toLowerCase())) continue;
    metrics.add(name);
  }
  labels.delete('__name__');
  return { metrics: [...metrics].sort(), labels: [...labels].sort() };
}

export interface NamedQuery {
  /** Where the query comes from: a dashboard panel's title or an alert's name. */
  source: string;
  expr: string;
}

/**
 * A template variable's query as PromQL: Grafana's `label_values(<selector>, <label>)` asks for the label's values
 * of the selector's series, so the selector is what Prometheus evaluates.
 */
export function variableQuery(query: string): string {
  return /^\s*label_values\(\s*(.+),\s*[a-zA-Z_]\w*\s*\)\s*$/.exec(query)?.[1] ?? query;
}

/** Every PromQL expression of a Grafana dashboard (panel targets, nested rows, templating queries). */
export function dashboardQueries(dashboard: unknown): NamedQuery[] {
  const queries: NamedQuery[] = [];
  const visit = (node: unknown, source: string): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item, source);
      return;
    }
    if (!node || typeof node !== 'object') return;
    const record = node as Record<string, unknown>;
    const here = typeof record.title === 'string' ? record.title : source;
    if (typeof record.expr === 'string') queries.push({ source: here, expr: record.expr });
    if (record.query && typeof record.query === 'object' && 'query' in record.query) {
      const query = record.query.query;
      if (typeof query === 'string' && query.trim())
        queries.push({ source: here, expr: variableQuery(query) });
    }
    for (const value of Object.values(record)) visit(value, here);
  };
  visit(dashboard, 'dashboard');
  return queries;
}

/** Every rule expression (alerting and recording) of a Prometheus rules file. */
export function ruleQueries(rules: unknown): NamedQuery[] {
  const groups = (
    rules as { groups?: Array<{ rules?: Array<{ alert?: string; record?: string; expr?: unknown }> }> }
  ).groups;
  return (groups ?? []).flatMap((group) =>
    (group.rules ?? []).map((rule) => ({
      source: rule.alert ?? rule.record ?? 'rule',
      expr: String(rule.expr),
    })),
  );
}

export function readDashboardQueries(path: string): NamedQuery[] {
  return dashboardQueries(JSON.parse(readFileSync(path, 'utf8')));
}

export function readRuleQueries(path: string): NamedQuery[] {
  return ruleQueries(parseYaml(readFileSync(path, 'utf8')));
}

/**
 * The series of a Prometheus text exposition (what `/metrics` answers), each with the label names its samples
 * carry. Histograms and summaries appear as the series Prometheus stores (`_bucket`, `_sum`, `_count`). A
 * metric declared by `# TYPE` without samples yet (a labelled counter nothing has incremented) is listed with
 * `null` labels: its name is known, its labels are not, so the label check skips it.
 */
export function exposedSeries(exposition: string): Map<string, Set<string> | null> {
  const series = new Map<string, Set<string> | null>();
  for (const line of exposition.split('\n')) {
    const declared = /^# TYPE ([a-zA-Z_:][\w:]*) (\w+)/.exec(line);
    if (declared) {
      const name = declared[1]!;
      const type = declared[2]!;
      const names =
        type === 'histogram'
          ? [`${name}_bucket`, `${name}_sum`, `${name}_count`]
          : type === 'summary'
            ? [name, `${name}_sum`, `${name}_count`]
            : [name];
      for (const each of names) if (!series.has(each)) series.set(each, null);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s/.exec(line);
    if (!sample) continue;
    const labels = series.get(sample[1]!) ?? new Set<string>();
    for (const label of (sample[3] ?? '').matchAll(/([a-zA-Z_]\w*)="(?:[^"\\]|\\.)*"/g))
      labels.add(label[1]!);
    series.set(sample[1]!, labels);
  }
  return series;
}

/**
 * What is wrong with the queries against an exposition: names of series it does not expose, and label
 * names that none of a query's series carries. Empty when every query is sound.
 */
export function unknownReferences(queries: NamedQuery[], exposition: string): string[] {
  const series = exposedSeries(exposition);
  const problems: string[] = [];
  for (const { source, expr } of queries) {
    const { metrics, labels } = promqlReferences(expr);
    if (metrics.length === 0) problems.push(`${source}: no metric in "${expr}"`);
    const known = new Set(PROMETHEUS_TARGET_LABELS);
    let labelsKnown = true;
    for (const metric of metrics) {
      if (PROMETHEUS_SYNTHETIC_SERIES.has(metric)) continue;
      if (!series.has(metric)) {
        problems.push(`${source}: ${metric} is not exported`);
        continue;
      }
      const metricLabels = series.get(metric);
      if (metricLabels === null || metricLabels === undefined) labelsKnown = false;
      for (const label of metricLabels ?? []) known.add(label);
    }
    if (!labelsKnown) continue;
    for (const label of labels) {
      if (!known.has(label)) problems.push(`${source}: label "${label}" is on none of ${metrics.join(', ')}`);
    }
  }
  return problems;
}
