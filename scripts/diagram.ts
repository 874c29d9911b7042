/**
 * Draws the payout lifecycle as a Mermaid stateDiagram-v2 by walking the machine itself (its state nodes and
 * their transitions), so the picture cannot drift from the code. Writes it into README.md between the
 * `<!-- diagram:start -->` / `<!-- diagram:end -->` markers and into docs/state-diagram.md.
 *
 *   node --import tsx scripts/diagram.ts --write   # make diagram
 *   node --import tsx scripts/diagram.ts --check   # make diagram-check: exit 1 when either file is stale
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import type { AnyStateNode } from 'xstate';
import { guardLabel } from '../src/machines/definition.js';
import { createPayoutMachine } from '../src/machines/payout.machine.js';
import { PAYOUT_MACHINE_VERSION } from '../src/machines/payout-lifecycle.js';

const payoutMachine = createPayoutMachine();

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const README = join(ROOT, 'README.md');
const DOC = join(ROOT, 'docs', 'state-diagram.md');
const START = '<!-- diagram:start -->';
const END = '<!-- diagram:end -->';

interface Edge {
  from: AnyStateNode;
  to: AnyStateNode;
  event: string;
  actions: string[];
  guard: string | null;
}

/** Mermaid ids cannot hold dots; a state's path inside the machine is unique, so it becomes the id. */
function mermaidId(node: AnyStateNode): string {
  return node.path.join('_');
}

function nameOf(item: unknown): string {
  if (typeof item === 'string') return item;
  if (item && typeof item === 'object' && 'type' in item && typeof item.type === 'string') return item.type;
  return 'inline';
}

function eventLabel(eventType: string): string {
  if (eventType === '') return 'always';
  const delay = /^xstate\.after\.(.+?)\./.exec(eventType);
  return delay ? `after ${delay[1]}` : eventType;
}

function edgesOf(node: AnyStateNode): Edge[] {
  const edges: Edge[] = [];
  for (const [eventType, transitions] of node.transitions) {
    for (const transition of transitions) {
      for (const target of transition.target ?? [node]) {
        edges.push({
          from: node,
          to: target,
          event: eventLabel(eventType),
          actions: transition.actions.map(nameOf),
          guard: transition.guard ? guardLabel(transition.guard) : null,
        });
      }
    }
  }
  for (const transition of node.always ?? []) {
    for (const target of transition.target ?? [node]) {
      edges.push({
        from: node,
        to: target,
        event: 'always',
        actions: transition.actions.map(nameOf),
        guard: transition.guard ? guardLabel(transition.guard) : null,
      });
    }
  }
  return edges;
}

function childrenOf(node: AnyStateNode): AnyStateNode[] {
  return Object.values(node.states).sort((a, b) => a.order - b.order);
}

/** The lines of one level of the chart: its initial arrow, compound children as blocks, edges, final arrows. */
function levelLines(parent: AnyStateNode, indent: string): string[] {
  const lines: string[] = [];
  const children = childrenOf(parent);
  for (const target of parent.initial?.target ?? []) lines.push(`${indent}[*] --> ${mermaidId(target)}`);
  for (const child of children) {
    if (Object.keys(child.states).length > 0) {
      lines.push(`${indent}state ${mermaidId(child)} {`, ...levelLines(child, `${indent}  `), `${indent}}`);
    }
  }
  for (const child of children) {
    for (const edge of edgesOf(child)) {
      const extras = [
        edge.guard ? `[${edge.guard}]` : '',
        edge.actions.length ? `/ ${edge.actions.join(', ')}` : '',
      ]
        .filter(Boolean)
        .join(' ');
      lines.push(
        `${indent}${mermaidId(edge.from)} --> ${mermaidId(edge.to)}: ${edge.event}${extras ? ` ${extras}` : ''}`,
      );
    }
  }
  for (const child of children) {
    if (child.type === 'final') lines.push(`${indent}${mermaidId(child)} --> [*]`);
  }
  return lines;
}

function mermaidDiagram(): string {
  return [
    '```mermaid',
    'stateDiagram-v2',
    '  direction LR',
    ...levelLines(payoutMachine.root, '  '),
    '```',
  ].join('\n');
}

function allNodes(node: AnyStateNode): AnyStateNode[] {
  return childrenOf(node).flatMap((child) => [child, ...allNodes(child)]);
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s+/g, ' ').trim();
}

/** The docs page, formatted the way `make fmt` would leave it so `prettier --check` and `--check` agree. */
async function stateDoc(): Promise<string> {
  const nodes = allNodes(payoutMachine.root);
  const states = nodes.map(
    (node) =>
      `| \`${node.path.join('.')}\` | ${node.type === 'final' ? 'yes' : 'no'} | ${cell(node.description ?? '')} |`,
  );
  const transitions = nodes.flatMap((node) =>
    edgesOf(node).map(
      (edge) =>
        `| \`${edge.from.path.join('.')}\` | \`${edge.event}\` | \`${edge.to.path.join('.')}\` | ${
          edge.guard ? `\`${edge.guard}\`` : ''
        } | ${edge.actions.map((action) => `\`${action}\``).join(', ')} |`,
    ),
  );
  const text = [
    '# Payout state diagram',
    '',
    `<!-- Generated by \`make diagram\` (scripts/diagram.ts) from src/machines/payout.machine.ts; do not edit. -->`,
    '',
    `The lifecycle of one payout: machine \`${payoutMachine.id}\`, version ${PAYOUT_MACHINE_VERSION}.`,
    'The same definition is served as JSON at `GET /api/machine`; the Stately visualizer loads it as it is.',
    '',
    mermaidDiagram(),
    '',
    '## States',
    '',
    '| State | Final | Meaning |',
    '| --- | --- | --- |',
    ...states,
    '',
    '## Transitions',
    '',
    'Any event not listed for a state is refused (`409 TransitionNotAllowed` over HTTP).',
    '',
    '| From | Event | To | Guard | Actions |',
    '| --- | --- | --- | --- | --- |',
    ...transitions,
    '',
  ].join('\n');
  return format(text, { ...(await resolveConfig(DOC)), filepath: DOC });
}

function readmeBlock(): string {
  return `${START}\n\n<!-- Generated by \`make diagram\` from the machine; do not edit by hand. -->\n\n${mermaidDiagram()}\n\n${END}`;
}

/** README.md with the block between the markers replaced, or an error naming what is wrong. */
function updatedReadme(current: string): string {
  const start = current.indexOf(START);
  const end = current.indexOf(END);
  if (start === -1 || end === -1 || end < start) {
    throw new Error(`README.md must contain ${START} followed by ${END}`);
  }
  return current.slice(0, start) + readmeBlock() + current.slice(end + END.length);
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

async function main(mode: string | undefined): Promise<number> {
  if (mode !== '--write' && mode !== '--check' && mode !== '--print') {
    process.stderr.write('usage: diagram.ts --write | --check | --print\n');
    return 2;
  }
  if (mode === '--print') {
    process.stdout.write(`${mermaidDiagram()}\n`);
    return 0;
  }
  // Read just before writing: README.md is edited by hand around the markers.
  const readme = readFileSync(README, 'utf8');
  const wantedReadme = updatedReadme(readme);
  const doc = readOr(DOC, '');
  const wantedDoc = await stateDoc();
  if (mode === '--write') {
    if (readme !== wantedReadme) writeFileSync(README, wantedReadme);
    if (doc !== wantedDoc) {
      mkdirSync(dirname(DOC), { recursive: true });
      writeFileSync(DOC, wantedDoc);
    }
    process.stdout.write(
      `state diagram: README.md ${readme === wantedReadme ? 'unchanged' : 'updated'}, docs/state-diagram.md ${
        doc === wantedDoc ? 'unchanged' : 'updated'
      }\n`,
    );
    return 0;
  }
  const stale = [
    readme !== wantedReadme ? 'README.md' : '',
    doc !== wantedDoc ? 'docs/state-diagram.md' : '',
  ].filter(Boolean);
  if (stale.length > 0) {
    process.stderr.write(
      `The state diagram in ${stale.join(' and ')} does not match src/machines/payout.machine.ts; run \`make diagram\`.\n`,
    );
    return 1;
  }
  process.stdout.write('state diagram up to date\n');
  return 0;
}

main(process.argv[2]).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`diagram: ${(error as Error).message}\n`);
    process.exitCode = 1;
  },
);
