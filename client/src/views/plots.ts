// Plots rendered to SVG in Node with vega-lite -> vega (no browser, no canvas): op-matrix heatmaps for hovers
// (as data: URIs) and the extraction report's charts (inlined into webviews, recoloured there by CSS variables).
import * as vl from 'vega-lite';
import * as vega from 'vega';
import type { Matrix } from '../../../server/src/program/types';

async function toSvg(spec: vl.TopLevelSpec): Promise<string> {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export interface HeatmapOptions {
  rowLabels: readonly string[];
  colLabels: readonly string[];
  rowTitle: string;
  colTitle: string;
  /** Text colour for labels: hovers are images and cannot read the theme's CSS variables. */
  textColor: string;
  /** Largest drawn side in pixels; cells shrink to fit. */
  maxSide?: number;
}

/** Largest number of rows/columns drawn; bigger bases are truncated with a note (hover images stay small). */
export const HEATMAP_MAX_CELLS = 48;

export async function heatmapSvg(m: Matrix, o: HeatmapOptions): Promise<{ svg: string; truncated: boolean }> {
  const rows = Math.min(m.rows, HEATMAP_MAX_CELLS);
  const cols = Math.min(m.cols, HEATMAP_MAX_CELLS);
  const values: { r: string; c: string; ri: number; ci: number; v: number }[] = [];
  let maxAbs = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = m.data[r * m.cols + c];
      if (Number.isFinite(v)) maxAbs = Math.max(maxAbs, Math.abs(v));
      values.push({ r: o.rowLabels[r] ?? String(r), c: o.colLabels[c] ?? String(c), ri: r, ci: c, v: Number.isFinite(v) ? v : 0 });
    }
  }
  const side = o.maxSide ?? 240;
  const cell = Math.max(4, Math.min(20, Math.floor(side / Math.max(rows, cols))));
  const showLabels = cell >= 7;
  const hasNegative = values.some((x) => x.v < 0);
  const spec: vl.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: null as unknown as string,
    padding: 4,
    width: cols * cell,
    height: rows * cell,
    data: { values },
    mark: { type: 'rect' },
    encoding: {
      x: {
        field: 'c',
        type: 'ordinal',
        sort: { field: 'ci' },
        title: o.colTitle,
        axis: { labels: showLabels, ticks: false, domain: false, labelAngle: -90, labelAlign: 'left', labelBaseline: 'middle', labelFontSize: 9, titleFontSize: 10, orient: 'top', labelOverlap: true },
      },
      y: {
        field: 'r',
        type: 'ordinal',
        sort: { field: 'ri' },
        title: o.rowTitle,
        axis: { labels: showLabels, ticks: false, domain: false, labelFontSize: 9, titleFontSize: 10, labelOverlap: true },
      },
      color: {
        field: 'v',
        type: 'quantitative',
        title: null,
        scale: hasNegative
          ? { scheme: 'redblue', domain: [-maxAbs || -1, maxAbs || 1], reverse: true }
          : { scheme: 'viridis', domain: [0, maxAbs || 1] },
        legend: { gradientLength: Math.max(40, Math.min(120, rows * cell)), labelFontSize: 9, gradientThickness: 8 },
      },
    },
    config: {
      axis: { labelColor: o.textColor, titleColor: o.textColor },
      legend: { labelColor: o.textColor },
      view: { stroke: null },
    },
  };
  return { svg: await toSvg(spec), truncated: rows < m.rows || cols < m.cols };
}

export function svgDataUri(svg: string): string {
  return `data:image/svg+xml;base64,${Buffer.from(svg, 'utf8').toString('base64')}`;
}

const POINT_KINDS = ['run', 'frontier', 'faithful', 'emitted'] as const;
const POINT_NAMES: Record<(typeof POINT_KINDS)[number], string> = { run: 'search run', frontier: 'Pareto frontier', faithful: 'faithful program (all edges)', emitted: 'emitted program' };

/** Sparsity search: edges kept vs match accuracy; the frontier as a step line, the emitted program highlighted. */
export async function frontierSvg(points: { edges: number; match: number; kind: (typeof POINT_KINDS)[number] }[], target?: number): Promise<string> {
  const values = points.map((p) => ({ edges: p.edges, match: p.match, kind: POINT_NAMES[p.kind], order: POINT_KINDS.indexOf(p.kind) }));
  const frontier = values.filter((v) => v.kind === POINT_NAMES.frontier);
  const spec: vl.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: null as unknown as string,
    width: 420,
    height: 240,
    layer: [
      {
        data: { values: frontier },
        mark: { type: 'line', interpolate: 'step-after', opacity: 0.7, color: '#72b7b2' },
        encoding: { x: { field: 'edges', type: 'quantitative', title: 'edges kept' }, y: { field: 'match', type: 'quantitative', title: 'match accuracy', scale: { domain: [0, 1] } } },
      },
      ...(target !== undefined
        ? [{ data: { values: [{ target }] }, mark: { type: 'rule' as const, strokeDash: [4, 4], color: '#e45756' }, encoding: { y: { field: 'target', type: 'quantitative' as const } } }]
        : []),
      {
        data: { values },
        mark: { type: 'point', filled: true, size: 70, opacity: 0.9 },
        encoding: {
          x: { field: 'edges', type: 'quantitative' },
          y: { field: 'match', type: 'quantitative' },
          order: { field: 'order' },
          color: {
            field: 'kind',
            type: 'nominal',
            title: null,
            scale: { domain: POINT_KINDS.map((k) => POINT_NAMES[k]), range: ['#4c78a8', '#72b7b2', '#b279a2', '#f58518'] },
          },
          shape: { field: 'kind', type: 'nominal', scale: { domain: POINT_KINDS.map((k) => POINT_NAMES[k]), range: ['circle', 'circle', 'square', 'diamond'] }, title: null },
        },
      },
    ],
  };
  return toSvg(spec);
}

/** A value per length bin (match or accuracy) as bars. */
export async function binsSvg(bins: { lengths: [number, number]; value: number }[], title: string): Promise<string> {
  const spec: vl.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: null as unknown as string,
    width: Math.max(160, bins.length * 48),
    height: 180,
    data: { values: bins.map((b) => ({ bin: `${b.lengths[0]}-${b.lengths[1]}`, value: b.value })) },
    layer: [
      { mark: { type: 'bar', color: '#4c78a8' }, encoding: { x: { field: 'bin', type: 'ordinal', sort: null, title: 'length', axis: { labelAngle: 0 } }, y: { field: 'value', type: 'quantitative', title, scale: { domain: [0, 1] } } } },
      { mark: { type: 'text', dy: -6 }, encoding: { x: { field: 'bin', type: 'ordinal', sort: null }, y: { field: 'value', type: 'quantitative' }, text: { field: 'value', type: 'quantitative', format: '.2f' } } },
    ],
  };
  return toSvg(spec);
}
