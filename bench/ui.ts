// `npx tsx bench/ui.ts --data DIR`: the web UI's budgets (issue budget: each page usable in
// under 1 s with 1,000,000 rows in the log; the live views smooth at 200 requests per second).
// DIR holds a requests.db, e.g. from `npm run bench:request-log -- --keep` (its path is printed).
// A real router (simulated upstreams) on that data dir, Debian's Chromium through playwright-core:
//   pages   time from navigation to the page's main content, each page 5 times (median, slowest)
//   live    the requests page with its live tail open while 200 requests a second arrive for
//           10 s (bounded: 2,000 requests, loopback only): the page's longest task and frames
//           per second, from the page's own PerformanceObserver and requestAnimationFrame
import { parseArgs } from 'node:util';
import { launchBrowser } from '../test/helpers/browser.ts';
import { startLab } from '../test/helpers/lab.ts';

const { values: flags } = parseArgs({ options: { data: { type: 'string' } } });
if (!flags.data) throw new Error('--data DIR (a directory with requests.db) is required');
const TOKEN = 'bench-ui-token';
const lab = await startLab({ adminToken: TOKEN, dataDir: flags.data });
const browser = await launchBrowser();
const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
await page.goto(`${lab.base}/ui/`);
await page.getByTestId('login-token').fill(TOKEN);
await page.getByTestId('login-submit').click();
await page.getByTestId('logout').waitFor();

const PAGES: Array<[string, string]> = [
  ['overview', '[data-testid="overview-total-requests"]'],
  ['requests', '[data-testid="requests-table"] tbody tr[data-request-id]'],
  ['upstreams', '[data-testid="upstream-card"]'],
  ['policy', '[data-testid="policy-hash"]'],
  ['playground', '[data-testid="playground-input"]'],
  ['keys', 'form[aria-label="New key"]'],
];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log('| page | usable (median of 5) | slowest |\n|---|---|---|');
for (const [name, selector] of PAGES) {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await page.goto(`${lab.base}/ui/${name}`);
    await page.locator(selector).first().waitFor();
    times.push(performance.now() - t0);
  }
  console.log(`| ${name} | ${median(times).toFixed(0)} ms | ${Math.max(...times).toFixed(0)} ms |`);
}
// A request's detail page: the newest row's.
{
  const times: number[] = [];
  const res = await fetch(`${lab.base}/admin/api/requests?limit=1`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const id = ((await res.json()) as any).requests[0].request_id;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await page.goto(`${lab.base}/ui/requests/${encodeURIComponent(id)}`);
    await page.getByTestId('request-detail').waitFor();
    times.push(performance.now() - t0);
  }
  console.log(`| request detail | ${median(times).toFixed(0)} ms | ${Math.max(...times).toFixed(0)} ms |`);
}

// Live tail at 200 requests per second.
await page.goto(`${lab.base}/ui/requests`);
await page.locator('[data-testid="requests-table"] tbody tr').first().waitFor();
await page.evaluate(`(() => {
  window.__long = 0; window.__frames = 0;
  new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long = Math.max(window.__long, e.duration); }).observe({ entryTypes: ['longtask'] });
  const tick = () => { window.__frames++; requestAnimationFrame(tick); }; requestAnimationFrame(tick);
})()`);
const body = JSON.stringify({ model: 'homelab/auto', messages: [{ role: 'user', content: 'tell me a joke' }] });
const started = Date.now();
let sent = 0;
const inflight: Promise<unknown>[] = [];
// 200 a second: every 10 ms, as many as keep the count on schedule (timers run late, never early).
while (sent < 2000) {
  const due = Math.min(2000, Math.floor(((Date.now() - started) / 1000) * 200) + 1);
  for (; sent < due; sent++) inflight.push(fetch(`${lab.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then((r) => r.text()));
  await new Promise((r) => setTimeout(r, 10));
}
await Promise.all(inflight);
const seconds = (Date.now() - started) / 1000;
const live = (await page.evaluate('({ long: window.__long, frames: window.__frames })')) as { long: number; frames: number };
console.log(`\nlive tail: ${sent} requests in ${seconds.toFixed(1)} s (${(sent / seconds).toFixed(0)}/s); page's longest task ${live.long.toFixed(0)} ms, ${(live.frames / seconds).toFixed(0)} frames/s`);
await browser.close();
await lab.close();
