// A uPlot time-series chart as a Preact component; redrawn when its data changes and resized
// with its box.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { html } from './html.js';

const PALETTE = ['#2f6fde', '#e0663d', '#2a9d6f', '#b4549b', '#c9a227', '#5b8fa8', '#8a6d3b', '#6b6bd6'];

/** series: [{label, values}], x: epoch seconds. */
export function TimeChart({ title, x, series, unit = '' }) {
  const box = useRef(null);
  useEffect(() => {
    const el = box.current;
    if (!el || x.length === 0) return undefined;
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue('--muted').trim() || '#888';
    const grid = css.getPropertyValue('--line').trim() || '#ddd';
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    const opts = {
      width: el.clientWidth || 600,
      height: 220,
      legend: { live: true },
      scales: { x: { time: true } },
      axes: [axis, { ...axis, values: (_u, vals) => vals.map((v) => `${v}${unit}`) }],
      series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: PALETTE[i % PALETTE.length], width: 2, points: { show: false } }))],
    };
    const plot = new uPlot(opts, [x, ...series.map((s) => s.values)], el);
    const ro = new ResizeObserver(() => plot.setSize({ width: el.clientWidth, height: 220 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [x, series, unit]);
  return html`<figure class="chart"><figcaption>${title}</figcaption><div ref=${box} class="plot"></div></figure>`;
}
