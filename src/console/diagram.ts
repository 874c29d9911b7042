/**
 * The payout machine as an inline SVG, drawn from its definition (`machineDefinition`, what `GET /api/machine`
 * serves) on every render: no drawn copy to fall out of date. Top-level states (the statuses) are boxes laid out in
 * columns by their distance from the initial state; a status's child states (its stages) are boxes inside it. Each
 * transition is an arrow labelled with its events. The payout's current status and stage are drawn with a thicker
 * border and a fill, and say so in words ("● current"), so colour is never the only sign.
 */
import type { MachineDefinition } from '../machines/definition.js';
import type { Html } from './html.js';
import { html } from './html.js';

interface StateConfig {
  type?: string;
  initial?: string;
  description?: string;
  states?: Record<string, StateConfig>;
  on?: Record<string, unknown>;
}

interface Box {
  /** `created` or `created.queued`. */
  path: string;
  name: string;
  x: number;
  y: number;
  width: number;
  height: number;
  description: string | undefined;
  children: Box[];
}

interface Edge {
  from: string;
  to: string;
  events: string[];
}

const STATUS_WIDTH = 250;
const CHILD_WIDTH = 200;
const CHILD_HEIGHT = 40;
const HEADER = 34;
const GAP_Y = 16;
const COLUMN_GAP = 170;
const STATUS_GAP = 40;
const MARGIN = 20;

/** The transitions of the definition, each as source path → target path with its events (self-loops left out). */
export function machineEdges(definition: MachineDefinition): Edge[] {
  const root = definition.states as Record<string, StateConfig>;
  const byPair = new Map<string, Edge>();
  const add = (from: string, to: string, event: string) => {
    if (from === to) return;
    const key = `${from}→${to}`;
    const edge = byPair.get(key) ?? { from, to, events: [] };
    if (!edge.events.includes(event)) edge.events.push(event);
    byPair.set(key, edge);
  };
  const visit = (path: string[], state: StateConfig) => {
    for (const [event, spec] of Object.entries(state.on ?? {})) {
      for (const transition of Array.isArray(spec) ? spec : [spec]) {
        const target = targetOf(transition);
        if (target === undefined) continue;
        add(path.join('.'), resolveTarget(definition.id, path, target), event);
      }
    }
    for (const [name, child] of Object.entries(state.states ?? {})) visit([...path, name], child);
  };
  for (const [name, state] of Object.entries(root)) visit([name], state);
  return [...byPair.values()];
}

function targetOf(transition: unknown): string | undefined {
  if (typeof transition === 'string') return transition;
  const target = (transition as { target?: unknown } | null)?.target;
  if (typeof target === 'string') return target;
  if (Array.isArray(target) && typeof target[0] === 'string') return target[0];
  return undefined;
}

/** `#payout.a.b` (absolute), `.child` (of the source), `sibling` (of the source, in its parent). */
function resolveTarget(machineId: string, source: string[], target: string): string {
  if (target.startsWith(`#${machineId}.`)) return target.slice(machineId.length + 2);
  if (target.startsWith('.')) return [...source, target.slice(1)].join('.');
  return [...source.slice(0, -1), target].join('.');
}

/** Columns by breadth-first distance from the initial state, over the transitions between statuses. */
function columnsOf(definition: MachineDefinition, edges: Edge[]): string[][] {
  const statuses = Object.keys(definition.states);
  const depth = new Map<string, number>([[definition.initial, 0]]);
  const queue = [definition.initial];
  while (queue.length > 0) {
    const current = queue.shift()!;
    for (const edge of edges) {
      const from = edge.from.split('.')[0]!;
      const to = edge.to.split('.')[0]!;
      if (from !== current || from === to || depth.has(to)) continue;
      depth.set(to, depth.get(current)! + 1);
      queue.push(to);
    }
  }
  const columns: string[][] = [];
  for (const status of statuses) {
    const column = depth.get(status) ?? columns.length;
    (columns[column] ??= []).push(status);
  }
  return columns.filter((column) => column !== undefined);
}

function layout(
  definition: MachineDefinition,
  edges: Edge[],
): { boxes: Box[]; width: number; height: number } {
  const root = definition.states as Record<string, StateConfig>;
  const boxes: Box[] = [];
  let height = 0;
  columnsOf(definition, edges).forEach((column, index) => {
    const x = MARGIN + index * (STATUS_WIDTH + COLUMN_GAP);
    let y = MARGIN;
    for (const status of column) {
      const state = root[status]!;
      const childNames = Object.keys(state.states ?? {});
      const boxHeight =
        childNames.length === 0 ? 56 : HEADER + childNames.length * (CHILD_HEIGHT + GAP_Y) + GAP_Y / 2;
      const children = childNames.map((name, childIndex) => ({
        path: `${status}.${name}`,
        name,
        x: x + (STATUS_WIDTH - CHILD_WIDTH) / 2,
        y: y + HEADER + childIndex * (CHILD_HEIGHT + GAP_Y),
        width: CHILD_WIDTH,
        height: CHILD_HEIGHT,
        description: state.states![name]!.description,
        children: [],
      }));
      boxes.push({
        path: status,
        name: status,
        x,
        y,
        width: STATUS_WIDTH,
        height: boxHeight,
        description: state.description,
        children,
      });
      y += boxHeight + STATUS_GAP;
    }
    height = Math.max(height, y);
  });
  const columns = Math.max(...boxes.map((box) => box.x)) + STATUS_WIDTH + MARGIN;
  return { boxes, width: columns, height: height - STATUS_GAP + MARGIN };
}

/** Where the segment from the centre of `box` towards (tx, ty) leaves the box. */
function exitPoint(box: Box, tx: number, ty: number): [number, number] {
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  const dx = tx - cx;
  const dy = ty - cy;
  if (dx === 0 && dy === 0) return [cx, cy];
  const scale = Math.min(
    dx === 0 ? Infinity : box.width / 2 / Math.abs(dx),
    dy === 0 ? Infinity : box.height / 2 / Math.abs(dy),
  );
  return [cx + dx * scale, cy + dy * scale];
}

const round = (value: number) => Math.round(value * 10) / 10;

/**
 * The diagram, the current status and stage highlighted. `current` is the payout's status and, when it has one,
 * its stage.
 */
export function stateDiagram(
  definition: MachineDefinition,
  current: { status: string; stage: string | null },
): Html {
  const edges = machineEdges(definition);
  const { boxes, width, height } = layout(definition, edges);
  const all = new Map<string, Box>();
  for (const box of boxes) {
    all.set(box.path, box);
    for (const child of box.children) all.set(child.path, child);
  }
  const currentPaths = new Set([
    current.status,
    ...(current.stage === null ? [] : [`${current.status}.${current.stage}`]),
  ]);
  const where = current.stage === null ? current.status : `${current.status} › ${current.stage}`;

  const arrows = edges.map((edge) => {
    const from = all.get(edge.from);
    const to = all.get(edge.to);
    if (!from || !to) return html``;
    const label = edge.events.join(', ');
    const sameStatus = edge.from.split('.')[0] === edge.to.split('.')[0];
    if (sameStatus && from.children.length === 0 && to.children.length === 0) {
      // Between two stages of one status: a curve out to the side of the status's box.
      const down = to.y > from.y;
      const side = down ? from.x + from.width : from.x;
      const bulge = down ? 34 : -34;
      const y1 = from.y + from.height / 2;
      const y2 = to.y + to.height / 2;
      const cx = side + bulge;
      const endX = down ? to.x + to.width : to.x;
      return html`<g class="edge"
        ><path
          d="M ${round(side)} ${round(y1)} Q ${round(cx)} ${round((y1 + y2) / 2)} ${round(endX)} ${round(y2)}"
          fill="none"
          stroke="#555"
          stroke-width="1.2"
          marker-end="url(#arrow)"
        /><text
          x="${round(cx + (down ? 4 : -4))}"
          y="${round((y1 + y2) / 2 + 4)}"
          text-anchor="${down ? 'start' : 'end'}"
          class="edge-label"
          >${label}</text
        ></g
      >`;
    }
    const [x1, y1] = exitPoint(from, to.x + to.width / 2, to.y + to.height / 2);
    const [x2, y2] = exitPoint(to, from.x + from.width / 2, from.y + from.height / 2);
    return html`<g class="edge"
      ><line
        x1="${round(x1)}"
        y1="${round(y1)}"
        x2="${round(x2)}"
        y2="${round(y2)}"
        stroke="#555"
        stroke-width="1.2"
        marker-end="url(#arrow)"
      /><text
        x="${round((x1 + x2) / 2)}"
        y="${round((y1 + y2) / 2 - 5)}"
        text-anchor="middle"
        class="edge-label"
        >${label}</text
      ></g
    >`;
  });

  const drawBox = (box: Box, child: boolean): Html => {
    const isCurrent = currentPaths.has(box.path);
    const name = isCurrent ? `${box.name} ● current` : box.name;
    const textY = child ? box.y + box.height / 2 + 5 : box.y + 22;
    return html`<g
        class="${isCurrent ? 'state current' : 'state'}"
        data-state="${box.path}"
        ${isCurrent ? html` aria-current="true"` : html``}
        ><title>
          ${box.path}${isCurrent ? ' (current)' : ''}${box.description ? `: ${box.description}` : ''}</title
        ><rect
          x="${box.x}"
          y="${box.y}"
          width="${box.width}"
          height="${box.height}"
          rx="${child ? 6 : 10}"
          fill="${isCurrent ? '#fff3c4' : child ? '#f4f6f8' : '#ffffff'}"
          stroke="${isCurrent ? '#7a4b00' : '#333'}"
          stroke-width="${isCurrent ? 4 : 1.5}"
        /><text
          x="${box.x + box.width / 2}"
          y="${textY}"
          text-anchor="middle"
          class="${child ? 'stage-name' : 'status-name'}"
          font-weight="${isCurrent || !child ? 'bold' : 'normal'}"
          >${name}</text
        ></g
      >${box.children.map((inner) => drawBox(inner, true))}`;
  };

  return html`<svg
    xmlns="http://www.w3.org/2000/svg"
    class="diagram"
    viewBox="0 0 ${width} ${height}"
    width="${width}"
    height="${height}"
    role="img"
    aria-labelledby="diagram-title diagram-desc"
  >
    <title id="diagram-title">State diagram of the payout machine, version ${definition.version}</title>
    <desc id="diagram-desc">
      Statuses as boxes with their stages inside, transitions as arrows labelled with their events. This
      payout is in ${where}, drawn with a thick border and marked “● current”.
    </desc>
    <defs>
      <marker
        id="arrow"
        viewBox="0 0 10 10"
        refX="9"
        refY="5"
        markerWidth="7"
        markerHeight="7"
        orient="auto-start-reverse"
      >
        <path d="M 0 0 L 10 5 L 0 10 z" fill="#555" />
      </marker>
    </defs>
    ${boxes.map((box) => drawBox(box, false))}${arrows}
  </svg>`;
}
