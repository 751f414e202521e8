// The daemon's page in Debian's Chromium, driven by playwright-core, against the real daemon
// under load. Started by `cargo test -p zen-watcher --test browser`, which starts two daemons
// (ZEN_URL without a token, ZEN_TOKEN_URL with ZEN_TOKEN) and sets ZEN_CHROMIUM and ZEN_SHOTS
// (where screenshots, downloads and the report's PDF are written).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const URL = process.env.ZEN_URL;
const TOKEN_URL = process.env.ZEN_TOKEN_URL;
const TOKEN = process.env.ZEN_TOKEN;
const SHOTS = process.env.ZEN_SHOTS;
mkdirSync(SHOTS, { recursive: true });

let browser;
let load;
const problems = [];

/** Polls `check` until it returns a truthy value, or fails after `ms` with `what`. */
async function until(what, check, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) { last = e.message; }
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`${what}: not within ${ms} ms (last: ${JSON.stringify(last)})`);
}

/** A page that records console errors and page errors in `problems`. */
async function open(url = URL, options = {}) {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1400, height: 1000 }, ...options });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`${url}: console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`${url}: page error: ${e.message}`));
  await page.goto(url);
  return page;
}

const post = (path, body) => fetch(`${URL}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });

before(async () => {
  browser = await chromium.launch({ executablePath: process.env.ZEN_CHROMIUM, args: ['--no-sandbox'] });
  const falco = JSON.stringify({ rule: 'Terminal shell in container', priority: 'Warning', output: 'shell', output_fields: { 'k8s.ns.name': 'shop', 'k8s.pod.name': 'cart' } });
  let n = 0;
  // Real load: falco alerts (de-duplicated after the first) and new generic findings.
  load = setInterval(() => {
    n++;
    post('/api/v1/ingest/falco', falco).catch(() => {});
    post('/api/v1/ingest/generic', JSON.stringify({ title: `finding ${n}`, severity: n % 2 ? 'high' : 'low', namespace: `team-${n % 3}`, rule: `rule-${n % 4}` })).catch(() => {});
  }, 200);
  // The recorder needs a few seconds of load before every pipeline series exists.
  await until('the latency series is recorded', async () => {
    const meta = await (await fetch(`${URL}/api/v1/meta`)).json();
    return meta.panels.find((p) => p.id === 'latency').series.length === 3;
  }, 30000);
});

after(async () => {
  clearInterval(load);
  await browser?.close();
  assert.deepEqual(problems, [], 'no console or page errors');
});

const attr = (page, sel, name) => page.$eval(sel, (el, n) => el.dataset[n], name);

test('every panel with series has data within 5 s and advances once a second', async () => {
  // The panels' series as of before the page asks: the page's own list holds them all (a
  // series born after it asked appears with its next look, within 15 s).
  const meta = await (await fetch(`${URL}/api/v1/meta`)).json();
  const page = await open();
  const drawn = meta.panels.filter((p) => p.series.length);
  const empty = meta.panels.filter((p) => !p.series.length).map((p) => p.id);
  console.log(`panels with data: ${drawn.length}; none recorded on this host: ${empty.join(', ') || 'none'}`);
  for (const id of ['throughput', 'latency', 'stages', 'queue', 'health', 'cpu', 'memory', 'network', 'severity']) {
    assert.ok(drawn.some((p) => p.id === id), `panel ${id} has series`);
  }
  await until('every panel drawn', async () => {
    for (const p of drawn) {
      const points = Number(await attr(page, `#panel-${p.id} .chart`, 'points'));
      if (!(points > 0) || !(await page.$(`#panel-${p.id} canvas`))) throw new Error(`${p.id}: ${points} points`);
    }
    return true;
  }, 5000);
  const before = Number(await attr(page, '#panel-throughput .chart', 'last'));
  await page.waitForTimeout(3200);
  const later = Number(await attr(page, '#panel-throughput .chart', 'last'));
  assert.ok(later - before >= 2 && later - before <= 4, `advanced ${later - before} s in 3.2 s`);
  // The advisor's forecasts: memory and the queue, at least, from the first pass.
  await until('forecasts listed', async () => (await page.$$('#forecasts tbody tr')).length >= 2);
  const health = await page.textContent('#health');
  assert.match(health, /^\d+$/);
  await page.screenshot({ path: join(SHOTS, 'desktop.png'), fullPage: true });
  await page.context().close();
});

test('cursors are synced, a drag zooms every chart, and a pause loses no second', async () => {
  const page = await open();
  await until('charts drawn', () => page.$('#panel-latency .u-over'));
  await page.waitForTimeout(1500);
  const over = await page.$('#panel-throughput .u-over');
  await over.scrollIntoViewIfNeeded();
  const box = await over.boundingBox();
  await page.mouse.move(box.x + box.width * 0.8, box.y + box.height / 2);
  const times = await until('cursor time shown on both charts', async () => {
    const a = await page.textContent('#panel-throughput .u-legend .u-series:first-child .u-value');
    const b = await page.textContent('#panel-latency .u-legend .u-series:first-child .u-value');
    return a && a !== '--' && [a, b];
  });
  assert.equal(times[0], times[1], 'one time under the cursor on every chart');

  // Pause: the chart stops; resume: every second that came meanwhile is there.
  await page.click('#pause');
  assert.equal(await page.getAttribute('#pause', 'aria-pressed'), 'true');
  const frozen = await attr(page, '#panel-throughput .chart', 'last');
  await page.waitForTimeout(3000);
  assert.equal(await attr(page, '#panel-throughput .chart', 'last'), frozen, 'nothing drawn while paused');
  assert.match(await page.textContent('#status'), /paused/);
  await page.click('#pause');
  await until('points kept while paused are drawn', async () => Number(await attr(page, '#panel-throughput .chart', 'last')) >= Number(frozen) + 3);
  // Read at once: the chart moves on every second.
  const { first, last, points } = await page.$eval('#panel-throughput .chart', (el) => ({
    first: Number(el.dataset.first), last: Number(el.dataset.last), points: Number(el.dataset.points),
  }));
  assert.equal(points, last - first + 1, 'one point per second, none lost');

  // Drag across the middle of a chart: the range becomes that span on every chart. (Where the
  // chart is now: the page above it may have grown meanwhile.)
  await over.scrollIntoViewIfNeeded();
  const at = await over.boundingBox();
  await page.mouse.move(at.x + at.width * 0.5, at.y + at.height / 2);
  await page.mouse.down();
  await page.mouse.move(at.x + at.width * 0.7, at.y + at.height / 2, { steps: 5 });
  await page.mouse.up();
  await until('custom range after a zoom', async () => (await page.getAttribute('button[data-range="custom"]', 'aria-pressed')) === 'true');
  await until('every chart shows the zoomed span', async () => {
    const spans = [];
    for (const id of ['throughput', 'latency', 'cpu']) {
      spans.push(Number(await attr(page, `#panel-${id} .chart`, 'last')) - Number(await attr(page, `#panel-${id} .chart`, 'first')));
    }
    return spans.every((s) => s > 0 && s < 200 && s === spans[0]);
  });
  await page.context().close();
});

test('a breached threshold shows pending, then firing, and clears after recovery', async () => {
  const page = await open();
  const row = 'tr[data-rule="ZenWatcherHighMemoryUsage"]';
  await until('the rule is listed', () => page.$(row));
  const state = () => page.$eval(`${row} [data-state]`, (el) => el.dataset.state);
  // The daemon uses more than 0 % of its memory limit: breached, and pending for 12 s (the
  // table is read every 5 s).
  await page.fill(`${row} input[name="threshold"]`, '0');
  await page.fill(`${row} input[name="for"]`, '12s');
  await page.click(`${row} button`);
  await until('pending', async () => (await state()) === 'pending');
  await until('firing', async () => (await state()) === 'firing', 30000);
  assert.ok(Number(await page.textContent('#firing')) >= 1);
  await page.fill(`${row} input[name="threshold"]`, '90');
  await page.fill(`${row} input[name="for"]`, '3m');
  await page.click(`${row} button`);
  await until('cleared', async () => ['resolved', 'inactive'].includes(await state()), 20000);
  await page.context().close();
});

test('the 24 h range reads the 10 s tier, CSV and PNG download, and the report prints to PDF', async () => {
  const page = await open();
  await page.click('button[data-range="86400"]');
  // A day of every panel, read by a debug build beside the load: given time.
  await until('10 s tier', async () => (await attr(page, '#panel-throughput .chart', 'tierStep')) === '10', 30000);
  assert.ok(Number(await attr(page, '#panel-throughput .chart', 'points')) > 0);

  await page.click('button[data-range="3600"]');
  await until('1 s tier', async () => (await attr(page, '#panel-throughput .chart', 'tierStep')) === '1');
  // The day before, overlaid: a second line for every line.
  const legendRows = () => page.$$eval('#panel-cpu .u-legend .u-series', (rows) => rows.length - 1);
  const alone = await legendRows();
  await page.check('#compare');
  await until('the day before overlaid', async () => (await legendRows()) === 2 * alone);
  assert.ok(await page.$eval('#panel-cpu .u-legend', (l) => l.textContent.includes('(day before)')));
  await page.uncheck('#compare');
  await until('the overlay removed', async () => (await legendRows()) === alone);
  await page.click('#export summary');
  const [json] = await Promise.all([page.waitForEvent('download'), page.click('button[data-export="json"]')]);
  const frame = JSON.parse(readFileSync(await json.path(), 'utf8'));
  await page.click('#export summary');
  const [csv] = await Promise.all([page.waitForEvent('download'), page.click('button[data-export="csv"]')]);
  const csvPath = join(SHOTS, 'range.csv');
  await csv.saveAs(csvPath);
  const lines = readFileSync(csvPath, 'utf8').trimEnd().split('\n');
  assert.match(lines[0], /^timestamp,/);
  assert.ok(lines[0].includes('zen_watcher_events_total'), lines[0]);
  const rows = lines.slice(1);
  assert.ok(rows.length > 100, `${rows.length} rows`);
  assert.ok(Math.abs(rows.length - frame.times.length) <= 1, 'the same range as the JSON');
  // Values hold no commas: each row has the time and one field per series.
  assert.ok(frame.series.length > 10, `${frame.series.length} series`);
  assert.ok(rows.every((r) => r.split(',').length === frame.series.length + 1), 'one field per series');
  const times = rows.map((l) => Date.parse(l.split(',')[0]) / 1000);
  const steps = new Set(times.slice(1).map((t, i) => t - times[i]));
  assert.equal(steps.size, 1, `one row per step: ${[...steps]}`);

  const [png] = await Promise.all([page.waitForEvent('download'), page.click('#panel-latency header button')]);
  const pngPath = join(SHOTS, 'latency.png');
  await png.saveAs(pngPath);
  assert.deepEqual([...readFileSync(pngPath).subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], 'a PNG file');
  await page.click('#export summary');
  const [pagePng] = await Promise.all([page.waitForEvent('download'), page.click('button[data-export="png"]')]);
  await pagePng.saveAs(join(SHOTS, 'page.png'));
  assert.ok(statSync(join(SHOTS, 'page.png')).size > 10000);

  await page.click('#export summary');
  const [report] = await Promise.all([page.waitForEvent('download'), page.click('button[data-export="report"]')]);
  const reportPath = join(SHOTS, 'report.html');
  await report.saveAs(reportPath);
  const html = readFileSync(reportPath, 'utf8');
  for (const part of ['SLO attainment', 'Latency, receipt to commit', 'Events by outcome', 'Top findings', '<svg']) {
    assert.ok(html.includes(part), part);
  }
  assert.ok(!/<script/i.test(html), 'no script in the report');
  const printed = await browser.newPage();
  await printed.goto(`file://${reportPath}`);
  const pdf = join(SHOTS, 'report.pdf');
  await printed.pdf({ path: pdf, format: 'A4', printBackground: true });
  execFileSync('pdftoppm', ['-png', '-r', '40', '-f', '1', '-l', '1', pdf, join(SHOTS, 'report-page')]);
  assert.ok(statSync(join(SHOTS, 'report-page-1.png')).size > 2000, 'the first page of the PDF renders');
  const pages = execFileSync('pdfinfo', [pdf], { encoding: 'utf8' }).match(/Pages:\s+(\d+)/)[1];
  assert.ok(Number(pages) >= 2, `${pages} pages`);
  await printed.close();
  await page.context().close();
});

test('what senders write is shown as text, never run', async () => {
  const hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
  const res = await post('/api/v1/ingest/generic', JSON.stringify({ title: hostile, severity: 'critical', namespace: 'evil', rule: '<b onmouseover="window.__pwned=3">r</b>' }));
  assert.equal(res.status, 202);
  const page = await open();
  const row = await until('the hostile finding in the feed', async () => {
    for (const r of await page.$$('#feed tbody tr')) if ((await r.textContent()).includes('<img src=x')) return r;
    return null;
  });
  await row.click();
  const shown = await page.textContent('#observation-body');
  assert.ok(shown.includes(hostile.replace(/"/g, '\\"')), 'the whole Observation, as text');
  await page.keyboard.press('Escape');
  await page.hover('#top-rules');
  assert.equal(await page.evaluate(() => window.__pwned), undefined, 'nothing ran');
  assert.equal(await page.$$eval('#feed img, #feed script, #top-rules b', (els) => els.length), 0, 'no element made of it');
  await page.context().close();
});

test('on a phone: one column, no horizontal scroll, a touch shows values; keyboard and themes work', async () => {
  const page = await open(URL, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, colorScheme: 'dark' });
  await until('charts drawn', () => page.$('#panel-throughput .u-over'));
  await page.waitForTimeout(1000);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `scroll width ${width}`);
  const boxes = await page.$$eval('#pipeline .panel', (els) => els.slice(0, 3).map((e) => e.getBoundingClientRect().x));
  assert.ok(boxes.every((x) => x === boxes[0]), 'panels stacked in one column');
  const over = await page.$('#panel-throughput .u-over');
  await over.scrollIntoViewIfNeeded();
  const box = await over.boundingBox();
  await page.touchscreen.tap(box.x + box.width * 0.9, box.y + box.height / 2);
  await until('a touch shows the values there', async () => (await page.textContent('#panel-throughput .u-legend .u-series:first-child .u-value')) !== '--');
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark', 'follows the system');
  await page.screenshot({ path: join(SHOTS, 'mobile.png'), fullPage: false });

  // Keyboard: a range button and an Observation, without a mouse.
  await page.focus('button[data-range="21600"]');
  await page.keyboard.press('Enter');
  assert.equal(await page.getAttribute('button[data-range="21600"]', 'aria-pressed'), 'true');
  await until('a feed row', () => page.$('#feed tbody tr'));
  // A row replaced by a refresh between the focus and the key is no failure of the page's.
  await until('a feed row opened with Enter', async () => {
    await page.focus('#feed tbody tr');
    await page.keyboard.press('Enter');
    return page.$eval('#observation', (d) => d.open);
  }, 30000);
  await page.keyboard.press('Escape');

  // The theme toggle is remembered.
  await page.click('#theme');
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light');
  await page.reload();
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light');
  await page.context().close();
});

test('with a token, the page asks for it and its APIs need it', async () => {
  const denied = await fetch(`${TOKEN_URL}/api/v1/meta`);
  assert.equal(denied.status, 401);
  const page = await open(TOKEN_URL);
  await until('the token form', () => page.isVisible('#login'));
  assert.equal(await page.isVisible('#main'), false);
  await page.fill('#login input[name="token"]', TOKEN);
  await page.click('#login button');
  await until('charts with the token', async () => Number(await attr(page, '#panel-cpu .chart', 'points')) > 0);
  // This daemon's history (written before it started) has a filesystem filling: its forecast
  // is drawn ahead of the data, and the panel says when it runs out.
  await until('the forecast drawn ahead', async () => (await attr(page, '#panel-filesystems .chart', 'forecast')) === 'filesystem:/zen-test', 30000);
  assert.match(await page.textContent('#panel-filesystems .forecast'), /filesystem:\/zen-test runs out in/);
  const edges = await page.evaluate(() => {
    const el = document.querySelector('#panel-filesystems .chart');
    return { last: Number(el.dataset.last), now: Date.now() / 1000 };
  });
  assert.ok(edges.now - edges.last < 30, 'the data reaches now');
  await page.locator('#panel-filesystems').scrollIntoViewIfNeeded();
  await page.locator('#panel-filesystems').screenshot({ path: join(SHOTS, 'forecast.png') });
  // Expected: the 401s the page met before it had the token.
  problems.splice(0, problems.length, ...problems.filter((p) => !(p.startsWith(TOKEN_URL) && p.includes('401'))));
  await page.context().close();
});
