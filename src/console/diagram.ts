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

/** A stage's box, and the room on each side of it inside its status for the arrows between stages. */
const CHILD_WIDTH = 210;
const CHILD_HEIGHT = 40;
const SIDE = 165;
const NESTED_WIDTH = CHILD_WIDTH + 2 * SIDE;
/** A status without stages. */
const PLAIN_WIDTH = 190;
const PLAIN_HEIGHT = 50;
const HEADER = 36;
const GAP_Y = 30;
const COLUMN_GAP = 150;
const STATUS_GAP = 56;
const MARGIN = 16;
const LINE = 13;
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
  let x = MARGIN;
  for (const column of columnsOf(definition, edges)) {
    const columnWidth = Math.max(
      ...column.map((status) =>
        Object.keys(root[status]!.states ?? {}).length > 0 ? NESTED_WIDTH : PLAIN_WIDTH,
      ),
    );
    let y = MARGIN;
    for (const status of column) {
      const state = root[status]!;
      const childNames = Object.keys(state.states ?? {});
      const width = childNames.length > 0 ? NESTED_WIDTH : PLAIN_WIDTH;
      const left = x + (columnWidth - width) / 2;
      const boxHeight =
        childNames.length === 0
          ? PLAIN_HEIGHT
          : HEADER + childNames.length * (CHILD_HEIGHT + GAP_Y) - GAP_Y / 2;
      const children = childNames.map((name, childIndex) => ({
        path: `${status}.${name}`,
        name,
        x: left + SIDE,
        y: y + HEADER + childIndex * (CHILD_HEIGHT + GAP_Y),
        width: CHILD_WIDTH,
        height: CHILD_HEIGHT,
        description: state.states![name]!.description,
        children: [],
      }));
      boxes.push({
        path: status,
        name: status,
        x: left,
        y,
        width,
        height: boxHeight,
        description: state.description,
        children,
      });
      y += boxHeight + STATUS_GAP;
    }
    height = Math.max(height, y);
    x += columnWidth + COLUMN_GAP;
  }
  return { boxes, width: x - COLUMN_GAP + MARGIN, height: height - STATUS_GAP + MARGIN + LINE };
}

/** Free vertical room for labels, per side of each status: a label is moved down until it overlaps none. */
class LabelRows {
  private readonly taken = new Map<string, Array<[number, number]>>();

  place(key: string, top: number, lines: number): number {
    const rows = this.taken.get(key) ?? [];
    let y = top;
    const height = lines * LINE;
    while (rows.some(([from, to]) => y < to + 2 && y + height > from - 2)) y += 4;
    rows.push([y, y + height]);
    this.taken.set(key, rows);
    return y;
  }
}

function labelLines(x: number, y: number, anchor: string, events: string[]): Html {
  return html`<text x="${round(x)}" y="${round(y)}" text-anchor="${anchor}" class="edge-label"
    >${events.map(
      (event, index) => html`<tspan x="${round(x)}" dy="${index === 0 ? 0 : LINE}">${event}</tspan>`,
    )}</text
  >`;
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

  const rows = new LabelRows();
  const arrows = edges.map((edge) => {
    const from = all.get(edge.from);
    const to = all.get(edge.to);
    if (!from || !to) return html``;
    const [fromStatus] = edge.from.split('.');
    const [toStatus] = edge.to.split('.');
    if (fromStatus === toStatus && from.children.length > 0 && edge.to.startsWith(`${edge.from}.`)) {
      // From any stage of a status into one of its stages: an arrow in from the status's bottom border.
      const cx = to.x + to.width / 2;
      const bottom = from.y + from.height;
      return html`<g class="edge"
        ><line
          x1="${round(cx)}"
          y1="${round(bottom)}"
          x2="${round(cx)}"
          y2="${round(to.y + to.height)}"
          stroke="#555"
          stroke-width="1.2"
          marker-end="url(#arrow)"
        />${labelLines(cx, bottom + LINE, 'middle', [`${edge.events.join(', ')} (from any stage)`])}</g
      >`;
    }
    if (fromStatus === toStatus) {
      // Between two stages of one status: down on the right of the stages, up on their left.
      const down = to.y > from.y;
      const side = down ? from.x + from.width : from.x;
      const y1 = from.y + from.height / 2;
      const y2 = to.y + to.height / 2;
      const span = Math.abs(y2 - y1) / (CHILD_HEIGHT + GAP_Y);
      const bulge = (down ? 1 : -1) * (18 + 22 * span);
      const apexX = side + bulge / 2;
      const apexY = (y1 + y2) / 2;
      const top = rows.place(
        `${fromStatus}:${down ? 'right' : 'left'}`,
        apexY - ((edge.events.length - 1) * LINE) / 2,
        edge.events.length,
      );
      return html`<g class="edge"
        ><path
          d="M ${round(side)} ${round(y1)} Q ${round(side + bulge)} ${round(apexY)} ${round(side)} ${round(y2)}"
          fill="none"
          stroke="#555"
          stroke-width="1.2"
          marker-end="url(#arrow)"
        />${labelLines(apexX + (down ? 5 : -5), top + 4, down ? 'start' : 'end', edge.events)}</g
      >`;
    }
    const [x1, y1] = exitPoint(from, to.x + to.width / 2, to.y + to.height / 2);
    const [x2, y2] = exitPoint(to, from.x + from.width / 2, from.y + from.height / 2);
    // Nearer the target: the room beside a status's stages holds the labels of the arrows between them.
    const midX = x1 + (x2 - x1) * 0.6;
    const midY = y1 + (y2 - y1) * 0.6;
    const top = rows.place('between', midY - 6 - (edge.events.length - 1) * LINE, edge.events.length);
    return html`<g class="edge"
      ><line
        x1="${round(x1)}"
        y1="${round(y1)}"
        x2="${round(x2)}"
        y2="${round(y2)}"
        stroke="#555"
        stroke-width="1.2"
        marker-end="url(#arrow)"
      />${labelLines(midX, top, 'middle', edge.events)}</g
    >`;
  });

  const drawBox = (box: Box, child: boolean): Html => {
    const isCurrent = currentPaths.has(box.path);
    const name = isCurrent ? `${box.name} ● current` : box.name;
    const textY = child || box.children.length === 0 ? box.y + box.height / 2 + 5 : box.y + 22;
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
