/**
 * Summarises a V8 .cpuprofile (`node --cpu-prof`): self time per function, and inclusive time per area (a
 * package of node_modules, a file of the service, Node's internals), so "where does the time go" has numbers.
 *
 * `node --import tsx bench/cpuprofile.ts FILE.cpuprofile [TOP]`
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface Entry {
  name: string;
  ms: number;
  share: number;
}

export interface Summary {
  /** Sampled time in the window, idle included. */
  totalMs: number;
  /** Sampled time the process was not idle: the denominator of every share below. */
  busyMs: number;
  /** Self time by function (name, file, line). */
  functions: Entry[];
  /** Self time by area. */
  areasSelf: Entry[];
  /** Inclusive time by area: a sample counts once for every area on its stack. */
  areasInclusive: Entry[];
  /** Inclusive time of the service's own functions (dist/src/**). */
  serviceFunctions: Entry[];
}

/** The area of a frame: a package, a file of ours, Node's internals or one of V8's pseudo-frames. */
export function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return pkg[1]!;
  const ours = /\/dist\/(src\/.+)\.js$/.exec(url) ?? /\/(src\/.+)\.ts$/.exec(url);
  if (ours) return ours[1]!;
  if (url.startsWith('node:')) {
    const internal = /^node:(?:internal\/)?([a-z_]+)/.exec(url);
    return `node:${internal?.[1] ?? 'other'}`;
  }
  return url.replace(/^file:\/\//, '');
}

function label(frame: CallFrame): string {
  const file = frame.url
    .replace(/^file:\/\/.*?\/(node_modules|dist)\//, '$1/')
    .replace(/^node:internal\//, 'node:');
  return `${frame.functionName || '(anonymous)'} ${file ? `${file}:${frame.lineNumber + 1}` : ''}`.trim();
}

function top(map: Map<string, number>, totalMs: number, n: number): Entry[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, ms]) => ({ name, ms, share: ms / totalMs }));
}

/** Microseconds of CLOCK_MONOTONIC, the clock V8 stamps profiles with (`process.hrtime.bigint() / 1000n`). */
export interface Window {
  fromUs: number;
  toUs: number;
}

export function summarise(profile: Profile, n = 30, window?: Window): Summary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const selfByNode = new Map<number, number>();
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i += 1) {
    const id = profile.samples[i]!;
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    // timeDeltas[i] is the time before sample i; attributing it to sample i is what DevTools does.
    selfByNode.set(id, (selfByNode.get(id) ?? 0) + delta / 1000);
  }
  const totalMs = [...selfByNode.values()].reduce((a, b) => a + b, 0);
  const idleId = profile.nodes.find((node) => node.callFrame.functionName === '(idle)')?.id;
  const busyMs = totalMs - (idleId === undefined ? 0 : (selfByNode.get(idleId) ?? 0));
  if (idleId !== undefined) selfByNode.delete(idleId);
  const functions = new Map<string, number>();
  const areasSelf = new Map<string, number>();
  const areasInclusive = new Map<string, number>();
  const serviceFunctions = new Map<string, number>();
  for (const [id, ms] of selfByNode) {
    const node = byId.get(id)!;
    const add = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + ms);
    add(functions, label(node.callFrame));
    add(areasSelf, areaOf(node.callFrame));
    const areas = new Set<string>();
    const ours = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      const area = areaOf(frame);
      areas.add(area);
      if (area.startsWith('src/')) ours.add(label(frame));
    }
    areas.delete('(root)');
    for (const area of areas) add(areasInclusive, area);
    for (const fn of ours) add(serviceFunctions, fn);
  }
  return {
    totalMs,
    busyMs,
    functions: top(functions, busyMs, n),
    areasSelf: top(areasSelf, busyMs, n),
    areasInclusive: top(areasInclusive, busyMs, n),
    serviceFunctions: top(serviceFunctions, busyMs, n),
  };
}

export function printSummary(
  summary: Summary,
  write: (line: string) => void = (l) => process.stdout.write(l),
) {
  const table = (title: string, entries: Entry[]) => {
    write(`\n${title}\n`);
    for (const e of entries)
      write(`  ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.ms.toFixed(0).padStart(7)} ms  ${e.name}\n`);
  };
  write(
    `profile: ${summary.totalMs.toFixed(0)} ms sampled, ${summary.busyMs.toFixed(0)} ms not idle ` +
      `(shares below are of the time not idle)\n`,
  );
  table('self time by function', summary.functions);
  table('self time by area', summary.areasSelf);
  table('inclusive time by area (a sample counts for every area on its stack)', summary.areasInclusive);
  table("inclusive time of the service's functions", summary.serviceFunctions);
}

export function summariseFile(file: string, n = 30, window?: Window): Summary {
  return summarise(JSON.parse(readFileSync(file, 'utf8')) as Profile, n, window);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, n = '30'] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node --import tsx bench/cpuprofile.ts FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  printSummary(summariseFile(file, Number(n)));
}
