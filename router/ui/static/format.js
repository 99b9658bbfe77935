// Numbers with units and times in the browser's own zone.
const nf = new Intl.NumberFormat();
const compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });

export const num = (n) => (n === null || n === undefined ? '–' : nf.format(n));
export const big = (n) => (n === null || n === undefined ? '–' : compact.format(n));
export function ms(n) {
  if (n === null || n === undefined) return '–';
  if (n < 1) return `${n.toFixed(2)} ms`;
  if (n < 1000) return `${Math.round(n)} ms`;
  if (n < 60_000) return `${(n / 1000).toFixed(n < 10_000 ? 2 : 1)} s`;
  return `${(n / 60_000).toFixed(1)} min`;
}
export function usd(n) {
  if (n === null || n === undefined) return 'unpriced';
  if (n === 0) return '$0';
  if (Math.abs(n) < 0.01) return `$${n.toFixed(4)}`;
  return `$${n.toFixed(2)}`;
}
export const pct = (a, b) => (b ? `${((100 * a) / b).toFixed(1)} %` : '–');
/** Epoch ms, epoch s or ISO text → Date. */
export function toDate(t) {
  if (typeof t === 'number') return new Date(t < 1e12 ? t * 1000 : t);
  return new Date(t);
}
export function when(t) {
  if (t === null || t === undefined) return '–';
  const d = toDate(t);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}
export function ago(t) {
  if (t === null || t === undefined) return '–';
  const s = Math.round((Date.now() - toDate(t).getTime()) / 1000);
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}
export const statusClass = (s) => (s >= 500 ? 'bad' : s >= 400 ? 'warn' : 'ok');
