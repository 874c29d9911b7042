/**
 * Line charts as SVG, turned into PNG by Debian's Chromium (playwright-core, as the browser tests use it): a few
 * stacked panels sharing the time axis, each with its series, a legend and its scale. Enough for a benchmark's
 * per-interval table drawn as a picture.
 */
import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

export interface Series {
  name: string;
  values: number[];
}

export interface Panel {
  title: string;
  unit: string;
  series: Series[];
}

const WIDTH = 900;
const PANEL_HEIGHT = 190;
const MARGIN = { left: 70, right: 170, top: 30, bottom: 28 };
const COLOURS = ['#0b57d0', '#b3261e', '#146c2e', '#8e4ec6', '#b06000', '#00696f'];
/** Each series also has its own dash pattern, so that they are told apart without colour. */
const DASHES = ['', '6 3', '2 3', '10 3 2 3', '1 2', '8 6'];

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 2.5, 5, 10].find((candidate) => candidate * power >= value)!;
  return step * power;
}

function panelSvg(panel: Panel, times: number[], top: number): string {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const max = niceMax(
    Math.max(0, ...panel.series.flatMap((series) => series.values.filter(Number.isFinite))),
  );
  const lastTime = Math.max(1, ...times);
  const x = (t: number) => MARGIN.left + (t / lastTime) * plotWidth;
  const y = (v: number) => top + MARGIN.top + plotHeight - (v / max) * plotHeight;
  const parts = [
    `<text x="${MARGIN.left}" y="${top + 18}" font-size="14" font-weight="bold">${escape(panel.title)}</text>`,
    `<rect x="${MARGIN.left}" y="${top + MARGIN.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#999"/>`,
  ];
  for (const fraction of [0, 0.5, 1]) {
    const value = max * fraction;
    parts.push(
      `<text x="${MARGIN.left - 6}" y="${y(value) + 4}" font-size="11" text-anchor="end">${value.toFixed(value < 10 ? 1 : 0)} ${escape(panel.unit)}</text>`,
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${y(value)}" y2="${y(value)}" stroke="#ddd"/>`,
    );
  }
  for (const t of [0, lastTime / 2, lastTime]) {
    parts.push(
      `<text x="${x(t)}" y="${top + PANEL_HEIGHT - 10}" font-size="11" text-anchor="middle">${Math.round(t)} s</text>`,
    );
  }
  panel.series.forEach((series, index) => {
    const points = series.values
      .map((value, i) => (Number.isFinite(value) ? `${x(times[i]!).toFixed(1)},${y(value).toFixed(1)}` : ''))
      .filter((point) => point !== '')
      .join(' ');
    const colour = COLOURS[index % COLOURS.length]!;
    const dash = DASHES[index % DASHES.length]!;
    parts.push(
      `<polyline points="${points}" fill="none" stroke="${colour}" stroke-width="2" stroke-dasharray="${dash}"/>`,
      `<line x1="${WIDTH - MARGIN.right + 12}" x2="${WIDTH - MARGIN.right + 40}" y1="${top + MARGIN.top + 8 + index * 18}" y2="${top + MARGIN.top + 8 + index * 18}" stroke="${colour}" stroke-width="2" stroke-dasharray="${dash}"/>`,
      `<text x="${WIDTH - MARGIN.right + 46}" y="${top + MARGIN.top + 12 + index * 18}" font-size="12">${escape(series.name)}</text>`,
    );
  });
  return parts.join('\n');
}

/** The panels, one above the other, as one SVG document; `times` are the x values (seconds) of every series. */
export function chartSvg(title: string, times: number[], panels: Panel[]): string {
  const height = 40 + panels.length * PANEL_HEIGHT;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="sans-serif">`,
    `<rect width="${WIDTH}" height="${height}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="24" font-size="16" text-anchor="middle" font-weight="bold">${escape(title)}</text>`,
    ...panels.map((panel, index) => panelSvg(panel, times, 40 + index * PANEL_HEIGHT)),
    '</svg>',
  ].join('\n');
}

/** Writes the SVG as `file` (PNG), rendered by /usr/bin/chromium. */
export async function writePng(svg: string, file: string): Promise<void> {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  try {
    const page = await browser.newPage();
    await page.setContent(`<!doctype html><body style="margin:0">${svg}</body>`);
    const element = await page.$('svg');
    if (!element) throw new Error('the chart did not render');
    writeFileSync(file, await element.screenshot({ type: 'png' }));
  } finally {
    await browser.close();
  }
}
