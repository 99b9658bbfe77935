// The web UI in a real browser (Debian's Chromium through playwright-core) against a real
// router and simulated upstreams on loopback: sign-in, every page rendering the router's data,
// drain and undrain from the page, the playground, sign-out, and no console errors anywhere.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pollUntil } from '../helpers/poll.ts';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { collectPageErrors, launchBrowser } from '../helpers/browser.ts';
import { startLab, type Lab } from '../helpers/lab.ts';

const TOKEN = 'ui-test-admin-token-0123456789';
const BROWSER_ZONE = 'Asia/Kolkata';
/** Set HOMELAB_ROUTER_UI_SHOTS=dir to save a screenshot of each page (the README's come from here). */
const SHOTS = process.env.HOMELAB_ROUTER_UI_SHOTS;

let lab: Lab;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let errors: string[];

async function shot(name: string): Promise<void> {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

before(async () => {
  // A data dir: the request log is on, so the log pages have rows to show.
  lab = await startLab({ adminToken: TOKEN, policyFile: true, dataDir: mkdtempSync(join(tmpdir(), 'hr-ui-data-')) });
  for (const text of ['Refactor this FastAPI handler and add pytest tests', 'tell me a joke', 'Compare event sourcing and CRUD: what are the trade-offs?']) {
    const r = await fetch(`${lab.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'homelab/auto', messages: [{ role: 'user', content: text }] }) });
    await r.text();
  }
  await pollUntil('the request log to hold the three requests', async () => {
    const res = await fetch(`${lab.base}/admin/api/requests`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const body = (await res.json()) as any;
    return body.requests?.length >= 3 ? true : undefined;
  });
  browser = await launchBrowser();
  // A zone other than the machine's (UTC here), so times shown in the browser's zone are checked.
  context = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-US', timezoneId: BROWSER_ZONE });
  page = await context.newPage();
  errors = collectPageErrors(page);
});

after(async () => {
  await browser?.close();
  await lab?.close();
});

test('ui – a wrong token is refused on the page; the right one signs in with an HttpOnly, SameSite=Strict cookie and is kept nowhere in the page', async () => {
  await page.goto(`${lab.base}/ui/`);
  await page.getByTestId('login-token').fill('not-the-token');
  await page.getByTestId('login-submit').click();
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').innerText(), /not the admin token/);
  assert.deepEqual(await context.cookies(), []);
  errors.length = 0; // the refused sign-in's 401 was the point of this step

  await page.getByTestId('login-token').fill(TOKEN);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('logout').waitFor();
  const [cookie] = await context.cookies();
  assert.equal(cookie?.name, 'hlr_session');
  assert.equal(cookie?.httpOnly, true);
  assert.equal(cookie?.sameSite, 'Strict');
  const stored = await page.evaluate<string>('JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.documentElement.outerHTML');
  assert.ok(!stored.includes(TOKEN), 'the admin token must not stay in the page or its storage');
});

test('ui – the overview counts the requests the router logged, by route, with a chart', async () => {
  await page.getByRole('link', { name: 'Overview' }).click();
  await page.getByTestId('overview-total-requests').waitFor();
  assert.equal(await page.getByTestId('overview-total-requests').innerText(), '3');
  await page.locator('.chart canvas').first().waitFor();
  await shot('overview');
});

test('ui – the requests page lists each logged request, a row opens its detail with the decision and attempts', async () => {
  await page.getByRole('link', { name: 'Requests', exact: true }).click();
  const rows = page.locator('[data-testid="requests-table"] tbody tr[data-request-id]');
  await rows.nth(2).waitFor();
  assert.equal(await rows.count(), 3);
  await shot('requests');
  const id = await rows.first().getAttribute('data-request-id');
  await rows.first().click();
  await page.getByTestId('request-detail').waitFor();
  assert.match(await page.getByTestId('request-detail').innerText(), new RegExp(id!));
  await page.getByRole('heading', { name: 'Attempts' }).waitFor();
  await shot('request-detail');
});

test('ui – the live tail shows a request as it finishes, and pauses', async () => {
  await page.getByRole('link', { name: 'Requests', exact: true }).click();
  const rows = page.locator('[data-testid="requests-table"] tbody tr[data-request-id]');
  await rows.nth(2).waitFor();
  const r = await fetch(`${lab.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'live-tail-probe' }, body: JSON.stringify({ model: 'homelab/auto', messages: [{ role: 'user', content: 'tell me a joke' }] }) });
  await r.text();
  await page.locator('[data-request-id="live-tail-probe"]').waitFor();
  await page.getByTestId('live-toggle').click();
  assert.equal(await page.getByTestId('live-toggle').getAttribute('aria-pressed'), 'false');
});

test('ui – the upstreams page shows a card per route, and drain / undrain from the page change the router', async () => {
  // Three probe rounds (the lab runs no probe timer): win-5090 answers its health check with a
  // 503 in the second one (once: unhealthy_after is 2, so it stays in service).
  const sim = lab.sims['win-5090']!;
  await lab.svc.health.probeAll();
  sim.setHealth('down');
  await lab.svc.health.probeAll();
  sim.setHealth(null);
  await lab.svc.health.probeAll();

  await page.getByRole('link', { name: 'Upstreams' }).click();
  const cards = page.getByTestId('upstream-card');
  await cards.first().waitFor();
  assert.deepEqual((await cards.evaluateAll((els) => els.map((e) => e.getAttribute('data-route')))).sort(), [...lab.svc.policy.routeNames].sort());

  // The probe history: one bar per probe, oldest first, the failed one marked; keyboard picks a probe.
  const strip = page.locator('[data-testid="probe-history"][data-route="win-5090"]');
  const bars = strip.locator('.probe-bar');
  await bars.nth(2).waitFor();
  assert.deepEqual(await bars.evaluateAll((els) => els.map((e) => e.getAttribute('data-state'))), ['passed', 'failed', 'passed']);
  assert.match(await strip.getByTestId('probe-summary').innerText(), /^2 \/ 3 passed · median [\d.]+ ms$/);
  const slider = strip.getByRole('slider');
  await slider.focus();
  await page.keyboard.press('Home');
  assert.match(await strip.getByTestId('probe-detail').innerText(), /passed · [\d.]+ ms · HTTP 200$/);
  await page.keyboard.press('ArrowRight');
  assert.match(await strip.getByTestId('probe-detail').innerText(), /failed · [\d.]+ ms · HTTP 503$/);
  assert.equal(await slider.getAttribute('aria-valuenow'), '2');
  const apiProbes = (await (await fetch(`${lab.base}/admin/api/upstreams/win-5090/probes`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as any;
  // The time shown is the probe's, in the browser's zone.
  const shown = await strip.getByTestId('probe-detail').innerText();
  const expected = new Date(apiProbes.probes[1].at).toLocaleTimeString('en-US', { timeZone: BROWSER_ZONE });
  assert.ok(shown.startsWith(`${expected} · failed`), `${shown} starts with ${expected}`);
  await page.keyboard.press('End');
  assert.equal(await slider.getAttribute('aria-valuenow'), '3');
  assert.equal(await page.locator('[data-testid="probe-history"][data-route="spark"] .probe-bar.passed').count(), 3);
  await shot('upstreams');

  await page.locator('[data-action="drain"][data-route="ubuntu-6000"]').click();
  await page.locator('[data-action="confirm"][data-route="ubuntu-6000"]').click();
  await page.locator('[data-testid="upstream-card"][data-route="ubuntu-6000"][data-state="drained"]').waitFor();
  assert.equal(lab.svc.states.get('ubuntu-6000')!.drained, true);

  await page.locator('[data-action="undrain"][data-route="ubuntu-6000"]').click();
  await page.locator('[data-action="confirm"][data-route="ubuntu-6000"]').click();
  await page.locator('[data-testid="upstream-card"][data-route="ubuntu-6000"][data-state="healthy"]').waitFor();
  assert.equal(lab.svc.states.get('ubuntu-6000')!.drained, false);
});

test('ui – the playground explains a prompt with the router’s own decision', async () => {
  await page.getByRole('link', { name: 'Playground' }).click();
  await page.getByTestId('playground-input').fill('Refactor this FastAPI handler and add pytest tests');
  await page.getByTestId('playground-submit').click();
  await page.getByTestId('playground-result').waitFor();
  const explained: any = await (await fetch(`${lab.url}/route/explain`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'homelab/auto', messages: [{ role: 'user', content: 'Refactor this FastAPI handler and add pytest tests' }] }) })).json();
  assert.equal(await page.getByTestId('playground-route').innerText(), explained.route);
  await shot('playground');
});

test('ui – the policy page shows the active hash and a reload with its outcome in the history', async () => {
  await page.getByRole('link', { name: 'Policy' }).click();
  await page.getByTestId('policy-hash').waitFor();
  assert.equal(await page.getByTestId('policy-hash').innerText(), lab.svc.policy.hash);
  await page.locator('[data-action="reload"]').click();
  await page.getByText('The file is unchanged.').waitFor();
  await page.getByRole('cell', { name: 'unchanged' }).waitFor();
  await shot('policy');
});

test('ui – the keys page creates a key (shown once) that then works on /v1, and revokes it', async () => {
  await page.getByRole('link', { name: 'Keys' }).click();
  await page.getByLabel('name').fill('discord-bot');
  await page.getByLabel('requests per minute').fill('30');
  await page.getByRole('button', { name: 'Create key' }).click();
  const secret = (await page.getByTestId('new-key').innerText()).trim();
  assert.match(secret, /^hlr_/);
  const used = await fetch(`${lab.url}/models`, { headers: { authorization: `Bearer ${secret}` } });
  assert.equal(used.status, 200);
  await page.getByRole('cell', { name: 'discord-bot' }).waitFor();
  await shot('keys');
  page.once('dialog', (d) => void d.accept());
  await page.getByRole('button', { name: 'Revoke' }).click();
  await page.locator('tr.revoked').waitFor();
  const refused = await fetch(`${lab.url}/models`, { headers: { authorization: `Bearer ${secret}` } });
  assert.equal(refused.status, 401);
});

test('ui – a signed-in cookie cannot change anything without the UI header (cross-site request)', async () => {
  const [cookie] = await context.cookies();
  const headers = { cookie: `${cookie!.name}=${cookie!.value}` };
  const forged = await fetch(`${lab.base}/admin/drain/spark`, { method: 'POST', headers });
  assert.equal(forged.status, 403);
  assert.equal(((await forged.json()) as any).error.code, 'forbidden');
  const otherSite = await fetch(`${lab.base}/admin/drain/spark`, { method: 'POST', headers: { ...headers, 'x-homelab-ui': '1', origin: 'http://evil.example' } });
  assert.equal(otherSite.status, 403);
  assert.equal(lab.svc.states.get('spark')!.drained, false);
  const read = await fetch(`${lab.base}/admin/upstreams`, { headers });
  assert.equal(read.status, 200);
});

test('ui – the page is readable on a phone and in the dark theme', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole('link', { name: 'Upstreams' }).click();
  await page.getByTestId('upstream-card').first().waitFor();
  const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
  assert.ok(overflow <= 1, `the upstreams page scrolls sideways on a phone by ${overflow}px`);
  const before = await page.evaluate<string>('document.documentElement.dataset.theme');
  await page.getByRole('button', { name: /theme/ }).click();
  const other = before === 'dark' ? 'light' : 'dark';
  // A selector, not a function: the page's CSP (rightly) forbids the eval a polled function needs.
  await page.locator(`html[data-theme="${other}"]`).waitFor({ state: 'attached' });
  await shot('upstreams-phone-dark');
  await page.getByRole('button', { name: /theme/ }).click();
  await page.setViewportSize({ width: 1280, height: 860 });
});

test('ui – sign-out ends the session: the cookie no longer opens the admin API', async () => {
  const [cookie] = await context.cookies();
  await page.getByTestId('logout').click();
  await page.getByTestId('login-token').waitFor();
  const after = await fetch(`${lab.base}/admin/upstreams`, { headers: { cookie: `${cookie!.name}=${cookie!.value}` } });
  assert.equal(after.status, 401);
});

test('ui – with auth.mode: keys, a signed-in operator’s playground explains and sends a prompt, and the answer streams in (no key in the page)', async (t) => {
  const keysLab = await startLab({ adminToken: TOKEN, dataDir: mkdtempSync(join(tmpdir(), 'hr-ui-keys-')), edit: (doc) => (doc.auth = { mode: 'keys' }) });
  t.after(() => keysLab.close());
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  t.after(() => ctx.close());
  const p = await ctx.newPage();
  const pageErrors = collectPageErrors(p);
  // Keys are on: without one, /v1/* is refused.
  const refused = await fetch(`${keysLab.url}/route/explain`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'homelab/auto', messages: [{ role: 'user', content: 'hi' }] }) });
  assert.equal(refused.status, 401);
  await refused.text();

  await p.goto(`${keysLab.base}/ui/playground`);
  await p.getByTestId('login-token').fill(TOKEN);
  await p.getByTestId('login-submit').click();
  await p.getByTestId('playground-input').fill('tell me a joke');
  await p.getByTestId('playground-submit').click();
  await p.getByTestId('playground-route').waitFor();
  assert.ok(keysLab.svc.policy.routeNames.includes(await p.getByTestId('playground-route').innerText()));

  await p.getByTestId('playground-send').click();
  await p.locator('[data-testid="playground-answer"][data-done="true"]').waitFor();
  const sent = Object.values(keysLab.sims).flatMap((s) => s.received);
  assert.equal(sent.length, 1);
  assert.equal(sent[0]!.body.stream, true, 'the upstream was asked to stream');
  assert.match(await p.getByTestId('playground-answer').locator('pre').innerText(), /echo: tell me a joke/);
  const rows = await pollUntil('the playground request in the request log', async () => {
    const res = await fetch(`${keysLab.base}/admin/api/requests`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const body = (await res.json()) as any;
    return body.requests?.some((r: any) => r.endpoint === 'chat') ? body.requests : undefined;
  });
  const chat = rows.find((r: any) => r.endpoint === 'chat');
  assert.equal(chat.client, 'ui:admin');
  assert.equal(chat.stream, true);
  const stored = await p.evaluate<string>('JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.documentElement.outerHTML');
  assert.ok(!stored.includes(TOKEN) && !/hlr_[A-Za-z0-9]/.test(stored), 'no token or key in the page or its storage');
  assert.deepEqual(pageErrors, []);
});

test('ui – no console errors, failed requests or error responses on any page', () => {
  assert.deepEqual(errors, []);
});
