// zen-watcher's page. Everything it shows comes from the daemon's JSON API: the panels and
// their series from /api/v1/meta, history from /api/v1/query, each second live from
// /api/v1/stream. Text from Observations is only ever set as textContent, never as HTML.

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

const LIVE_SECONDS = 600;
const DAY = 86400;

const state = {
  token: sessionStorage.getItem('zen-token') || '',
  range: { kind: 'live' },   // or { kind: 'last', seconds } or { kind: 'custom', from, to }
  paused: false,
  compare: false,
  meta: null,
  panels: new Map(),         // id -> { def, chart, el, data, names }
  live: null,                // { names, index: Map(name -> column), times: [], columns: [[]] }
  stream: null,              // AbortController
  lastId: null,
  sort: 'cpu',
  timers: [],
  feedStale: false,          // events arrived since the feed was last read
  insights: null,            // the advisor's last pass
};

// ---------------------------------------------------------------- API

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (state.token) headers.set('Authorization', `Bearer ${state.token}`);
  const res = await fetch(path, { ...options, headers });
  if (res.status === 401) {
    showLogin();
    throw new Unauthorized('the API token is needed');
  }
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try { message = (await res.json()).error.message; } catch { /* not JSON */ }
    throw new Error(message);
  }
  return res;
}

const json = async (path, options) => (await api(path, options)).json();

function showLogin() {
  $('#login').hidden = false;
  $('#main').hidden = true;
  setStatus('the API token is needed', 'down');
}

$('#login').addEventListener('submit', (e) => {
  e.preventDefault();
  state.token = new FormData(e.target).get('token');
  sessionStorage.setItem('zen-token', state.token);
  $('#login').hidden = true;
  $('#main').hidden = false;
  start();
});

function setStatus(text, kind) {
  const s = $('#status');
  s.textContent = text;
  s.className = `status ${kind}`;
}

// ---------------------------------------------------------------- formatting

const PREFIXES = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];

function si(v, digits = 3) {
  const a = Math.abs(v);
  for (const [f, p] of PREFIXES) if (a >= f) return `${+(v / f).toPrecision(digits)}${p}`;
  return `${+v.toPrecision(digits)}`;
}

function bytes(v) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${+v.toPrecision(3)} ${units[i]}`;
}

function seconds(v) {
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a < 1e-3) return `${+(v * 1e6).toPrecision(3)} µs`;
  if (a < 1) return `${+(v * 1e3).toPrecision(3)} ms`;
  return `${+v.toPrecision(3)} s`;
}

function format(unit, v) {
  if (v == null || !Number.isFinite(v)) return '–';
  switch (unit) {
    case 's': return seconds(v);
    case 'bytes': return bytes(v);
    case 'Bps': return `${bytes(v)}/s`;
    case 'ops': return `${si(v)}/s`;
    case 'iops': return `${si(v)} IO/s`;
    case 'percentunit': return `${+(v * 100).toPrecision(3)} %`;
    case 'percent': return `${+v.toPrecision(3)} %`;
    default: return si(v);
  }
}

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
const PALETTE = ['#2563eb', '#16a34a', '#dc2626', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#ea580c', '#4f46e5'];
const COLOURS = { green: '--ok', orange: '--warn', yellow: '--warn', red: '--bad' };

// ---------------------------------------------------------------- theme

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
}

function initialTheme() {
  const saved = localStorage.getItem('zen-theme');
  if (saved) return saved;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

$('#theme').addEventListener('click', () => {
  const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
  localStorage.setItem('zen-theme', next);
  applyTheme(next);
  rebuildCharts();
});

matchMedia('(prefers-color-scheme: dark)').addEventListener('change', (e) => {
  if (!localStorage.getItem('zen-theme')) { applyTheme(e.matches ? 'dark' : 'light'); rebuildCharts(); }
});

// ---------------------------------------------------------------- charts

/** The series a forecast resource is read from. */
function forecastSeries(resource) {
  if (resource === 'memory') return 'node_memory_MemAvailable_bytes';
  if (resource === 'queue') return 'zen_watcher_queue_depth{queue="submissions"}';
  if (resource.startsWith('filesystem:')) return `node_filesystem_avail_bytes{mountpoint="${resource.slice(11)}"}`;
  return null;
}

/** The forecasts heading for their limit among a panel's series: the series' index and the
 *  forecast. */
function panelForecasts(p) {
  const out = [];
  for (const f of state.insights?.forecasts || []) {
    if (f.forecast.state !== 'exhaustion') continue;
    const i = p.names.findIndex((s) => s.name === forecastSeries(f.resource));
    if (i >= 0) out.push({ i, f });
  }
  return out;
}

/** Seconds a chart shows ahead of its data: a quarter of its span when a forecast is drawn. */
function ahead(p, min, max) {
  return state.range.kind !== 'custom' && panelForecasts(p).length ? (max - min) / 4 : 0;
}

/** Draws a forecast ahead of the data: the trend's line from the last value, and the band
 *  between the slowest and fastest paces of its interval, up to the limit. */
function drawForecasts(u, p) {
  const { ctx, bbox } = u;
  const drawn = [];
  for (const { i, f } of panelForecasts(p)) {
    const xs = u.data[0];
    const ys = u.data[i + 1];
    let j = ys.length - 1;
    while (j >= 0 && ys[j] == null) j--;
    if (j < 0) continue;
    const t0 = xs[j], v0 = ys[j];
    const end = u.scales.x.max;
    if (!(end > t0)) continue;
    const limit = f.limit.value;
    const g = f.forecast;
    // The value at t on a pace that reaches the limit `secs` after t0 (never: flat).
    const at = (secs, t) => (Number.isFinite(secs) && secs > 0 ? v0 + (limit - v0) * Math.min(1, (t - t0) / secs) : v0);
    const x = (t) => u.valToPos(t, 'x', true);
    const y = (v) => u.valToPos(v, 'y', true);
    const steps = 24;
    const points = (secs) => Array.from({ length: steps + 1 }, (_, k) => t0 + ((end - t0) * k) / steps).map((t) => [x(t), y(at(secs, t))]);
    const fast = points(g.low), slow = points(g.high), line = points(g.seconds);
    ctx.save();
    ctx.beginPath();
    ctx.rect(bbox.left, bbox.top, bbox.width, bbox.height);
    ctx.clip();
    ctx.fillStyle = css('--warn');
    ctx.globalAlpha = 0.15;
    ctx.beginPath();
    fast.forEach(([px, py], k) => (k ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
    for (const [px, py] of slow.reverse()) ctx.lineTo(px, py);
    ctx.closePath();
    ctx.fill();
    ctx.globalAlpha = 1;
    ctx.strokeStyle = css('--warn');
    ctx.setLineDash([5, 3]);
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.beginPath();
    line.forEach(([px, py], k) => (k ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
    ctx.stroke();
    ctx.restore();
    drawn.push(f.resource);
  }
  $('.chart', p.el).dataset.forecast = drawn.join(' ');
}

/** Draws a panel's thresholds as dashed horizontal lines, a regression the advisor found in
 *  one of its series as a dashed vertical line where it began, and its forecasts ahead. */
function thresholdsPlugin(p) {
  const { def } = p;
  return {
    hooks: {
      draw: [(u) => {
        drawForecasts(u, p);
        const { ctx, bbox } = u;
        const mine = new Set(def.series.map((s) => s.name));
        for (const r of state.insights?.regressions || []) {
          if (!mine.has(r.series)) continue;
          const x = u.valToPos(r.change.at, 'x', true);
          if (!Number.isFinite(x) || x < bbox.left || x > bbox.left + bbox.width) continue;
          ctx.save();
          ctx.strokeStyle = css('--warn');
          ctx.setLineDash([2, 3]);
          ctx.lineWidth = 2 * devicePixelRatio;
          ctx.beginPath();
          ctx.moveTo(x, bbox.top);
          ctx.lineTo(x, bbox.top + bbox.height);
          ctx.stroke();
          ctx.restore();
        }
        for (const t of def.thresholds) {
          const y = u.valToPos(t.value, 'y', true);
          if (!Number.isFinite(y) || y < bbox.top || y > bbox.top + bbox.height) continue;
          ctx.save();
          ctx.strokeStyle = css(COLOURS[t.colour] || '--bad');
          ctx.setLineDash([6, 4]);
          ctx.lineWidth = devicePixelRatio;
          ctx.beginPath();
          ctx.moveTo(bbox.left, y);
          ctx.lineTo(bbox.left + bbox.width, y);
          ctx.stroke();
          ctx.restore();
        }
      }],
    },
  };
}

function chartWidth(el) {
  return Math.max(240, Math.floor(el.getBoundingClientRect().width));
}

function makeChart(p) {
  const { def, el } = p;
  const host = $('.chart', el);
  host.replaceChildren();
  const axis = { stroke: css('--muted'), grid: { stroke: css('--line'), width: 1 }, ticks: { stroke: css('--line') } };
  const series = [{}];
  p.names.forEach((s, i) => {
    series.push({ label: s.legend, stroke: PALETTE[i % PALETTE.length], width: 1.5, value: (u, v) => format(def.unit, v) });
  });
  if (state.compare && state.range.kind !== 'live') {
    p.names.forEach((s, i) => {
      series.push({ label: `${s.legend} (day before)`, stroke: PALETTE[i % PALETTE.length], width: 1, dash: [4, 4], alpha: 0.6, value: (u, v) => format(def.unit, v) });
    });
  }
  const opts = {
    width: chartWidth(host),
    height: 220,
    series,
    scales: { x: { time: true, range: (u, min, max) => [min, max + ahead(p, min, max)] } },
    axes: [axis, { ...axis, size: 70, values: (u, vals) => vals.map((v) => format(def.unit, v)) }],
    cursor: { sync: { key: 'zen', setSeries: false }, drag: { x: true, y: false } },
    legend: { live: true },
    plugins: [thresholdsPlugin(p)],
    hooks: { setSelect: [(u) => zoomed(u)] },
  };
  p.chart = new uPlot(opts, p.data, host);
  host.dataset.points = String(p.data[0].length);
  // A finger on a chart moves its cursor (and so every chart's): the values there show.
  const over = p.chart.over;
  const touch = (e) => {
    const t = e.touches[0];
    if (!t) return;
    const r = over.getBoundingClientRect();
    p.chart.setCursor({ left: t.clientX - r.left, top: t.clientY - r.top });
  };
  over.addEventListener('touchstart', touch, { passive: true });
  over.addEventListener('touchmove', touch, { passive: true });
}

/** A drag on a chart shows that span on every chart: the range becomes custom. */
function zoomed(u) {
  if (u.select.width < 2) return;
  const from = Math.floor(u.posToVal(u.select.left, 'x'));
  const to = Math.ceil(u.posToVal(u.select.left + u.select.width, 'x'));
  u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
  setRange({ kind: 'custom', from, to });
}

function rebuildCharts() {
  for (const p of state.panels.values()) if (p.names.length) makeChart(p);
}

function panelElement(def) {
  const el = document.createElement('article');
  el.className = 'panel';
  el.id = `panel-${def.id}`;
  el.dataset.panel = def.id;
  const head = document.createElement('header');
  const h = document.createElement('h3');
  h.textContent = def.title;
  const png = document.createElement('button');
  png.type = 'button';
  png.textContent = 'PNG';
  png.setAttribute('aria-label', `Download ${def.title} as PNG`);
  png.addEventListener('click', () => downloadPanelPng(def.id));
  head.append(h, png);
  const about = document.createElement('p');
  about.className = 'about';
  about.textContent = def.about;
  const forecast = document.createElement('p');
  forecast.className = 'forecast';
  forecast.hidden = true;
  const chart = document.createElement('div');
  chart.className = 'chart';
  el.append(head, about, forecast, chart);
  return el;
}

function buildPanels(meta) {
  for (const grid of $$('.grid[data-section]')) grid.replaceChildren();
  state.panels.clear();
  for (const def of meta.panels) {
    const grid = $(`.grid[data-section="${def.section}"]`);
    if (!grid) continue;
    const el = panelElement(def);
    grid.append(el);
    state.panels.set(def.id, { def, el, chart: null, names: def.series, data: [[]] });
  }
}

function setData(p, data) {
  p.data = data;
  const host = $('.chart', p.el);
  if (!p.names.length) {
    const empty = document.createElement('p');
    empty.className = 'empty';
    empty.textContent = 'No data recorded yet.';
    host.replaceChildren(empty);
    p.chart = null;
    return;
  }
  const width = data.length;
  if (!p.chart || p.chart.series.length !== width) makeChart(p);
  else p.chart.setData(data);
  // For people reading the DOM (and the browser tests): what the chart holds.
  host.dataset.points = String(data[0].length);
  host.dataset.first = String(data[0][0] ?? '');
  host.dataset.last = String(data[0][data[0].length - 1] ?? '');
}

// Charts follow the page's width (not its height, which the tables and notes change).
let pageWidth = 0;
new ResizeObserver(() => {
  const width = document.body.clientWidth;
  if (width === pageWidth) return;
  pageWidth = width;
  for (const p of state.panels.values()) if (p.chart) p.chart.setSize({ width: chartWidth($('.chart', p.el)), height: 220 });
}).observe(document.body);

// ---------------------------------------------------------------- ranges

function bounds() {
  const r = state.range;
  const now = Math.floor(Date.now() / 1000);
  if (r.kind === 'live') return { from: now - LIVE_SECONDS, to: now };
  if (r.kind === 'last') return { from: now - r.seconds, to: now };
  return { from: r.from, to: r.to };
}

function setRange(range) {
  state.range = range;
  const key = range.kind === 'live' ? 'live' : range.kind === 'last' ? String(range.seconds) : 'custom';
  for (const b of $$('#ranges button')) b.setAttribute('aria-pressed', String(b.dataset.range === key));
  $('#custom').hidden = range.kind !== 'custom';
  if (range.kind === 'custom') {
    const f = $('#custom');
    f.from.value = localInput(range.from);
    f.to.value = localInput(range.to);
  }
  $('#pause').disabled = range.kind !== 'live';
  load();
}

function localInput(t) {
  const d = new Date(t * 1000);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

for (const b of $$('#ranges button')) {
  b.addEventListener('click', () => {
    const v = b.dataset.range;
    if (v === 'live') setRange({ kind: 'live' });
    else if (v === 'custom') {
      const { from, to } = bounds();
      setRange({ kind: 'custom', from, to });
    } else setRange({ kind: 'last', seconds: Number(v) });
  });
}

$('#custom').addEventListener('submit', (e) => {
  e.preventDefault();
  const f = e.target;
  const from = Math.floor(new Date(f.from.value).getTime() / 1000);
  const to = Math.floor(new Date(f.to.value).getTime() / 1000);
  if (Number.isFinite(from) && Number.isFinite(to) && from < to) setRange({ kind: 'custom', from, to });
});

$('#pause').addEventListener('click', () => {
  state.paused = !state.paused;
  $('#pause').setAttribute('aria-pressed', String(state.paused));
  $('#pause').textContent = state.paused ? 'Resume' : 'Pause';
  if (!state.paused) drawLive();
  liveStatus();
});

$('#compare').addEventListener('change', (e) => {
  state.compare = e.target.checked;
  load();
});

// ---------------------------------------------------------------- loading

function queryPath(names, from, to, points) {
  const q = new URLSearchParams();
  for (const n of names) q.append('series', n.name);
  q.set('from', String(from));
  q.set('to', String(to));
  q.set('points', String(points));
  return `api/v1/query?${q}`;
}

async function fetchPanel(p, from, to) {
  const points = Math.min(2000, chartWidth($('.chart', p.el)));
  const frame = await json(queryPath(p.names, from, to, points));
  const data = [frame.times, ...frame.series.map((s) => s.avg)];
  if (state.compare && state.range.kind !== 'live') {
    const before = await json(queryPath(p.names, from - DAY, to - DAY, points));
    // The day before, moved a day on so that it lies under today's points.
    const index = new Map(before.times.map((t, i) => [t + DAY, i]));
    for (const s of before.series) data.push(frame.times.map((t) => { const i = index.get(t); return i == null ? null : s.avg[i]; }));
  }
  return { data, tierStep: frame.tier_step };
}

let loading = 0;

async function load() {
  const mine = ++loading;
  stopStream();
  const { from, to } = bounds();
  await Promise.all([...state.panels.values()].filter((p) => p.names.length).map(async (p) => {
    try {
      const { data, tierStep } = await fetchPanel(p, from, to);
      // Only the latest load draws: an earlier one answering late must not undo it.
      if (mine === loading) {
        $('.chart', p.el).dataset.tierStep = String(tierStep);
        setData(p, data);
      }
    } catch (e) { if (!(e instanceof Unauthorized)) console.warn(p.def.id, e.message); }
  }));
  for (const p of state.panels.values()) if (!p.names.length) setData(p, [[]]);
  if (mine !== loading) return;
  refreshAll();
  if (state.range.kind === 'live') startStream(from);
  else setStatus(`showing ${new Date(from * 1000).toLocaleString()} – ${new Date(to * 1000).toLocaleString()}`, 'paused');
}

// ---------------------------------------------------------------- live

/** Live data: what the panels last loaded, then one column a second from the stream. */
function startStream(from) {
  const names = [];
  for (const p of state.panels.values()) for (const s of p.names) if (!names.includes(s.name)) names.push(s.name);
  state.live = { names, times: [], columns: new Map(names.map((n) => [n, []])) };
  // Seed with the loaded points, so the stream continues them.
  for (const p of state.panels.values()) {
    if (!p.names.length) continue;
    if (!state.live.times.length) state.live.times = p.data[0].slice();
    p.names.forEach((s, i) => {
      const byTime = new Map(p.data[0].map((t, j) => [t, p.data[i + 1][j]]));
      state.live.columns.set(s.name, state.live.times.map((t) => byTime.get(t) ?? null));
    });
  }
  state.lastId = state.live.times.length ? state.live.times[state.live.times.length - 1] : from;
  const ctl = new AbortController();
  state.stream = ctl;
  readStream(ctl);
}

function stopStream() {
  if (state.stream) state.stream.abort();
  state.stream = null;
}

/** Server-Sent Events read with fetch, so the token goes in a header; reconnects with
 *  Last-Event-ID after an error, so no second is lost. */
async function readStream(ctl) {
  let wait = 1000;
  while (!ctl.signal.aborted) {
    try {
      const headers = { Accept: 'text/event-stream' };
      if (state.lastId != null) headers['Last-Event-ID'] = String(state.lastId);
      const res = await api('api/v1/stream', { headers, signal: ctl.signal });
      liveStatus();
      wait = 1000;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      let streamNames = [];
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const ev = { event: 'message', data: '', id: null };
          for (const line of block.split('\n')) {
            const at = line.indexOf(':');
            if (at <= 0) continue;
            const field = line.slice(0, at);
            const v = line.slice(at + 1).replace(/^ /, '');
            if (field === 'data') ev.data += v;
            else if (field === 'event') ev.event = v;
            else if (field === 'id') ev.id = v;
          }
          if (ev.event === 'series') streamNames = JSON.parse(ev.data);
          else if (ev.data) onSecond(streamNames, JSON.parse(ev.data), ev.id);
        }
      }
    } catch (e) {
      if (ctl.signal.aborted || e instanceof Unauthorized) return;
    }
    if (ctl.signal.aborted) return;
    setStatus('reconnecting', 'down');
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, 10000);
  }
}

function onSecond(names, tick, id) {
  const live = state.live;
  if (!live) return;
  if (id != null) state.lastId = Number(id);
  const t = tick.t;
  const last = live.times.length ? live.times[live.times.length - 1] : t - 1;
  if (t <= last) return;
  // A second the recorder missed is a gap in the lines, not a shorter time axis.
  for (let gap = last + 1; gap < t && t - gap < LIVE_SECONDS; gap++) {
    live.times.push(gap);
    for (const col of live.columns.values()) col.push(null);
  }
  live.times.push(t);
  const values = new Map(names.map((n, i) => [n, tick.values[i]]));
  for (const [n, col] of live.columns) col.push(values.get(n) ?? null);
  while (live.times.length > LIVE_SECONDS) {
    live.times.shift();
    for (const col of live.columns.values()) col.shift();
  }
  // New events: the feed has something to show.
  if (tick.values.some((v, i) => v > 0 && names[i] === 'zen_watcher_events_total')) state.feedStale = true;
  if (!state.paused) drawLive();
  liveStatus();
}

function liveStatus() {
  if (state.range.kind !== 'live') return;
  const n = state.live ? state.live.times.length : 0;
  if (state.paused) setStatus(`paused (${n} s kept)`, 'paused');
  else setStatus('live', 'live');
}

function drawLive() {
  const live = state.live;
  if (!live) return;
  for (const p of state.panels.values()) {
    if (!p.names.length) continue;
    setData(p, [live.times.slice(), ...p.names.map((s) => live.columns.get(s.name).slice())]);
  }
  overview();
  containers();
}

// ---------------------------------------------------------------- tables

function lastOf(panelId, pick = () => true) {
  const p = state.panels.get(panelId);
  if (!p || !p.names.length) return null;
  let total = null;
  p.names.forEach((s, i) => {
    if (!pick(s)) return;
    const col = p.data[i + 1] || [];
    for (let j = col.length - 1; j >= 0; j--) if (col[j] != null) { total = (total ?? 0) + col[j]; break; }
  });
  return total;
}

function overview() {
  const health = lastOf('health');
  const h = $('#health');
  h.textContent = health == null ? '–' : health.toFixed(0);
  h.className = `big ${health == null ? '' : health >= 90 ? 'good' : health >= 50 ? 'warn' : 'bad'}`;
  $('#rate').textContent = format('ops', lastOf('throughput', (s) => s.legend === 'received'));
  const p95 = lastOf('latency', (s) => s.legend === 'P95');
  const el = $('#p95');
  el.textContent = format('s', p95);
  el.className = `big ${p95 == null ? '' : p95 < 0.05 ? 'good' : p95 < 0.1 ? 'warn' : 'bad'}`;
}

function cell(row, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  row.append(td);
  return td;
}

async function refreshSlos() {
  let slos;
  try { slos = await json('api/v1/slos'); } catch (e) { return; }
  const body = $('#slos tbody');
  body.replaceChildren();
  for (const s of slos.slos) {
    const tr = document.createElement('tr');
    cell(tr, s.name);
    cell(tr, s.state.replace('_', ' '));
    cell(tr, `${s.objective_percent} % over ${s.period}`);
    const left = s.error_budget_remaining;
    cell(tr, left == null ? '–' : `${(left * 100).toFixed(1)} %`, left == null ? '' : left > 0.5 ? 'good' : left > 0.25 ? 'warn' : 'bad');
    cell(tr, s.windows.map((w) => `${w.window}: ${w.burn_rate == null ? '–' : w.burn_rate.toFixed(2)}`).join(', '));
    body.append(tr);
  }
  return slos;
}

async function refreshAlerts() {
  let alerts, rules;
  try { [alerts, rules] = await Promise.all([json('api/v1/alerts'), json('api/v1/alerts/rules')]); } catch { return; }
  const byName = new Map();
  for (const a of alerts.alerts) {
    const prev = byName.get(a.name);
    const rank = { firing: 2, pending: 1 };
    if (!prev || (rank[a.state] || 0) > (rank[prev.state] || 0)) byName.set(a.name, a);
  }
  const firing = alerts.alerts.filter((a) => a.state === 'firing').length;
  const f = $('#firing');
  f.textContent = String(firing);
  f.className = `big ${firing ? 'bad' : 'good'}`;
  const body = $('#alerts tbody');
  // Leave the table alone while someone edits it.
  if (body.contains(document.activeElement) && document.activeElement.tagName === 'INPUT') return;
  body.replaceChildren();
  for (const r of rules.rules) {
    const a = byName.get(r.name);
    const tr = document.createElement('tr');
    tr.dataset.rule = r.name;
    const name = cell(tr, r.name);
    name.title = r.summary;
    const st = a ? a.state : 'inactive';
    cell(tr, st, `state-${st}`).dataset.state = st;
    cell(tr, a && a.value != null ? si(a.value) : '–');
    const th = cell(tr, '');
    const ft = cell(tr, '');
    if (r.threshold != null) {
      const input = document.createElement('input');
      input.type = 'number'; input.step = 'any'; input.name = 'threshold'; input.value = String(r.threshold);
      input.setAttribute('aria-label', `${r.name} threshold (${r.op})`);
      th.append(`${r.op} `, input);
    } else th.textContent = '–';
    const wait = document.createElement('input');
    wait.name = 'for'; wait.value = r.for; wait.size = 5;
    wait.setAttribute('aria-label', `${r.name}: how long before firing`);
    ft.append(wait);
    cell(tr, a ? new Date(a.fired_at || a.active_at).toLocaleTimeString() : '');
    const save = document.createElement('button');
    save.type = 'button'; save.textContent = 'Save';
    save.addEventListener('click', () => saveRule(tr));
    const td = document.createElement('td');
    td.append(save);
    tr.append(td);
    body.append(tr);
  }
}

async function saveRule(tr) {
  const change = {};
  const threshold = $('input[name="threshold"]', tr);
  if (threshold) change.threshold = Number(threshold.value);
  change.for = $('input[name="for"]', tr).value.trim();
  const err = $('#rules-error');
  try {
    await api('api/v1/alerts/rules', {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ [tr.dataset.rule]: change }),
    });
    err.hidden = true;
    document.activeElement.blur();
    refreshAlerts();
  } catch (e) {
    err.textContent = `${tr.dataset.rule}: ${e.message}`;
    err.hidden = false;
  }
}

function components(slos) {
  const list = $('#components');
  list.replaceChildren();
  const item = (name, ok, detail) => {
    const li = document.createElement('li');
    li.textContent = `${name}: ${detail}`;
    li.className = ok === true ? 'good' : ok === false ? 'bad' : 'warn';
    list.append(li);
  };
  const errors = state.panels.get('errors');
  if (errors) {
    for (const [i, s] of errors.names.entries()) {
      const col = errors.data[i + 1] || [];
      const recent = col.slice(-60).reduce((a, v) => a + (v || 0), 0);
      item(s.legend, recent === 0, recent === 0 ? 'no errors in the last minute' : `${si(recent)} errors/s summed over the last minute`);
    }
  }
  const queue = lastOf('queue', (s) => !s.legend.startsWith('capacity'));
  const cap = lastOf('queue', (s) => s.legend.startsWith('capacity'));
  if (cap) item('queue', queue / cap < 0.8, `${((queue / cap) * 100).toFixed(0)} % full`);
  if (slos) {
    const age = (Date.now() - new Date(slos.evaluated_at).getTime()) / 1000;
    item('alerting', age < 60, `evaluated ${Math.round(age)} s ago`);
  }
  item('stream', state.range.kind !== 'live' ? null : !!state.stream, state.range.kind === 'live' ? 'live' : 'not live');
}

function spark(values, colour) {
  const c = document.createElement('canvas');
  c.className = 'spark';
  c.width = 120 * devicePixelRatio; c.height = 24 * devicePixelRatio;
  const ctx = c.getContext('2d');
  const v = values.filter((x) => x != null);
  if (v.length > 1) {
    const max = Math.max(...v), min = Math.min(...v);
    ctx.strokeStyle = colour; ctx.lineWidth = devicePixelRatio;
    ctx.beginPath();
    v.forEach((x, i) => {
      const px = (i / (v.length - 1)) * c.width;
      const py = c.height - ((x - min) / (max - min || 1)) * (c.height - 2) - 1;
      if (i) ctx.lineTo(px, py); else ctx.moveTo(px, py);
    });
    ctx.stroke();
  }
  return c;
}

function containers() {
  const cpu = state.panels.get('container_cpu');
  const mem = state.panels.get('container_memory');
  if (!cpu || !mem) return;
  const rows = new Map();
  const last = (col) => { for (let j = col.length - 1; j >= 0; j--) if (col[j] != null) return col[j]; return null; };
  cpu.names.forEach((s, i) => rows.set(s.legend, { name: s.legend, cpu: last(cpu.data[i + 1] || []), spark: cpu.data[i + 1] || [] }));
  mem.names.forEach((s, i) => {
    const r = rows.get(s.legend) || { name: s.legend, cpu: null, spark: [] };
    r.memory = last(mem.data[i + 1] || []);
    rows.set(s.legend, r);
  });
  const sorted = [...rows.values()].sort((a, b) => (b[state.sort] ?? -1) - (a[state.sort] ?? -1)).slice(0, 20);
  const body = $('#container-table tbody');
  body.replaceChildren();
  for (const r of sorted) {
    const tr = document.createElement('tr');
    cell(tr, r.name);
    cell(tr, r.cpu == null ? '–' : `${r.cpu.toFixed(3)} CPUs`);
    cell(tr, format('bytes', r.memory));
    const td = document.createElement('td');
    td.append(spark(r.spark.slice(-120), css('--accent')));
    tr.append(td);
    body.append(tr);
  }
}

for (const b of $$('#container-table [data-sort]')) b.addEventListener('click', () => { state.sort = b.dataset.sort; containers(); });

async function refreshFeed() {
  const q = new URLSearchParams({ limit: '50' });
  for (const [k, v] of new FormData($('#feed-filter'))) if (v) q.set(k, v);
  let page;
  try { page = await json(`api/v1/observations?${q}`); } catch { return; }
  // Not under the feet of someone moving through it with the keyboard.
  if ($('#feed tbody').contains(document.activeElement)) return;
  const body = $('#feed tbody');
  body.replaceChildren();
  for (const o of page.items) {
    const tr = document.createElement('tr');
    tr.className = 'clickable';
    tr.tabIndex = 0;
    cell(tr, new Date(o.lastSeen).toLocaleString());
    cell(tr, o.severity, `sev sev-${o.severity}`);
    cell(tr, o.source);
    cell(tr, o.namespace || '');
    cell(tr, o.title);
    cell(tr, String(o.count));
    const open = () => {
      $('#observation-body').textContent = JSON.stringify(o, null, 2);
      $('#observation').showModal();
    };
    tr.addEventListener('click', open);
    tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
    body.append(tr);
  }
}

$('#feed-filter').addEventListener('input', () => refreshFeed());
$('#feed-filter').addEventListener('submit', (e) => { e.preventDefault(); refreshFeed(); });

async function refreshTops() {
  const { from, to } = bounds();
  const range = `from=${from}&to=${to}&limit=10`;
  let rules, namespaces;
  try {
    [rules, namespaces] = await Promise.all([json(`api/v1/top?by=rule&${range}`), json(`api/v1/top?by=namespace&${range}`)]);
  } catch { return; }
  const fill = (sel, items, cols) => {
    const body = $(`${sel} tbody`);
    body.replaceChildren();
    for (const t of items) {
      const tr = document.createElement('tr');
      for (const c of cols(t)) cell(tr, c);
      body.append(tr);
    }
  };
  fill('#top-rules', rules.items, (t) => [t.source, t.key || '(none)', String(t.observations)]);
  fill('#top-namespaces', namespaces.items, (t) => [t.key || '(cluster)', String(t.observations)]);
  const sources = state.panels.get('sources');
  if (sources) {
    const list = $('#sources');
    list.replaceChildren(...sources.names.map((s) => { const o = document.createElement('option'); o.value = s.legend; return o; }));
  }
}

function duration(s) {
  if (s == null || !Number.isFinite(s)) return 'never';
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 2 * 86400) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}

async function refreshInsights() {
  let found;
  try { found = await json('api/v1/insights'); } catch { return; }
  state.insights = found;
  // The forecasts move the charts' right edge: ranged again, redrawn.
  for (const p of state.panels.values()) if (p.chart && p.data[0].length) p.chart.setData(p.data);
  const recs = $('#recommendations tbody');
  recs.replaceChildren();
  for (const r of found.recommendations) {
    const tr = document.createElement('tr');
    tr.dataset.recommendation = r.id;
    cell(tr, r.severity, r.severity === 'critical' ? 'bad' : 'warn');
    const what = cell(tr, r.summary);
    what.title = r.evidence.map((e) => `${e.what}: ${si(e.value)}`).join('\n');
    cell(tr, r.action.kind === 'setting' ? `${r.action.key}: ${r.action.value}` : r.action.text);
    cell(tr, r.effect);
    const td = cell(tr, r.state);
    td.dataset.state = r.state;
    for (const [label, to] of [['Acknowledge', 'acknowledged'], ['Applied', 'applied'], ['Dismiss', 'dismissed']]) {
      if (r.state === to) continue;
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = label;
      b.addEventListener('click', async () => {
        await api(`api/v1/insights/recommendations/${encodeURIComponent(r.id)}`, {
          method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ state: to }),
        });
        refreshInsights();
      });
      td.append(' ', b);
    }
    recs.append(tr);
  }
  if (!found.recommendations.length) {
    const tr = document.createElement('tr');
    cell(tr, '');
    cell(tr, 'Nothing to change.');
    recs.append(tr);
  }
  const tuned = $('#tuning tbody');
  tuned.replaceChildren();
  const changes = found.tuning?.changes || [];
  $('#tuning').hidden = !found.tuning?.auto_apply;
  for (const c of [...changes].reverse()) {
    const tr = document.createElement('tr');
    cell(tr, new Date(c.at * 1000).toLocaleString());
    const keys = { batch_age: 'pipeline.max_batch_age', batch_size: 'pipeline.max_batch_size', queue_wait: 'queue_wait' };
    cell(tr, keys[c.knob] || c.knob);
    const unit = c.knob === 'batch_size' ? (v) => String(v) : (v) => format('s', v);
    cell(tr, `${unit(c.from)} → ${unit(c.to)}`);
    cell(tr, `${format('s', c.before.p95)} → ${c.after ? format('s', c.after.p95) : '…'}`);
    const td = cell(tr, c.outcome);
    if (c.outcome === 'trying' || c.outcome === 'kept') {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = 'Undo';
      b.addEventListener('click', async () => {
        await api(`api/v1/insights/tuning/${c.id}/undo`, { method: 'POST' });
        refreshInsights();
      });
      td.append(' ', b);
    }
    tuned.append(tr);
  }
  const fc = $('#forecasts tbody');
  fc.replaceChildren();
  for (const f of found.forecasts) {
    const tr = document.createElement('tr');
    cell(tr, f.resource);
    const g = f.forecast;
    const text = g.state === 'exhaustion' ? duration(g.seconds) : g.state === 'exhausted' ? 'now' : g.state === 'steady' ? 'not heading there' : 'not enough data yet';
    cell(tr, text, g.state === 'exhausted' || (g.state === 'exhaustion' && g.seconds < 86400) ? 'bad' : '');
    cell(tr, g.state === 'exhaustion' ? `${duration(g.low)} – ${duration(g.high)}` : '');
    fc.append(tr);
  }
  // Each panel that draws a forecast resource says when it runs out.
  const panelOf = (resource) => resource === 'memory' ? 'memory' : resource === 'queue' ? 'queue'
    : resource.startsWith('filesystem:') ? 'filesystems' : resource.startsWith('error_budget:') ? 'budget' : null;
  const notes = new Map();
  for (const f of found.forecasts) {
    const id = panelOf(f.resource);
    const g = f.forecast;
    if (!id || (g.state !== 'exhaustion' && g.state !== 'exhausted')) continue;
    const text = g.state === 'exhausted' ? `${f.resource}: exhausted now`
      : `${f.resource} runs out in ${duration(g.seconds)} (${duration(g.low)} – ${duration(g.high)})`;
    notes.set(id, [...(notes.get(id) || []), text]);
  }
  // And each panel with a series unusual now (a robust score above 7) says which.
  const scores = new Map(found.anomalies.map((a) => [a.series, a.anomaly]));
  for (const [id, p] of state.panels) {
    for (const s of p.names) {
      const a = scores.get(s.name);
      if (a && a.score > 7) {
        const text = `${s.legend} unusual (${a.score.toFixed(0)} σ; ${(a.rate * 100).toFixed(0)} % of the last 60 points)`;
        notes.set(id, [...(notes.get(id) || []), text]);
      }
    }
  }
  for (const [id, p] of state.panels) {
    const note = $('.forecast', p.el);
    const lines = notes.get(id);
    note.hidden = !lines;
    note.textContent = lines ? lines.join('; ') : '';
  }
  const other = $('#findings-of-advisor tbody');
  other.replaceChildren();
  for (const r of found.regressions) {
    const tr = document.createElement('tr');
    cell(tr, 'regression', 'warn');
    cell(tr, r.message);
    other.append(tr);
  }
  for (const b of found.bottlenecks) {
    const tr = document.createElement('tr');
    cell(tr, b.what);
    cell(tr, b.detail);
    other.append(tr);
  }
}

async function refreshTables() {
  const slos = await refreshSlos();
  await refreshAlerts();
  components(slos);
  overview();
  containers();
}

/** Everything but the charts, on a range change. */
function refreshAll() {
  refreshTables();
  refreshInsights();
  refreshFeed();
  refreshTops();
}

// ---------------------------------------------------------------- export

function download(blob, name) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

function stamp() {
  return new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
}

function panelCanvas(p) {
  const source = p.chart && $('canvas', p.el);
  const w = source ? source.width : 600, h = source ? source.height : 200;
  const pad = 28 * devicePixelRatio;
  const out = document.createElement('canvas');
  out.width = w; out.height = h + pad;
  const ctx = out.getContext('2d');
  ctx.fillStyle = css('--card'); ctx.fillRect(0, 0, out.width, out.height);
  ctx.fillStyle = css('--fg');
  ctx.font = `${14 * devicePixelRatio}px system-ui, sans-serif`;
  ctx.fillText(p.def.title, 8 * devicePixelRatio, 19 * devicePixelRatio);
  if (source) ctx.drawImage(source, 0, pad);
  return out;
}

const toBlob = (canvas) => new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));

async function downloadPanelPng(id) {
  const p = state.panels.get(id);
  if (p) download(await toBlob(panelCanvas(p)), `zen-watcher-${id}-${stamp()}.png`);
}

async function downloadPagePng() {
  const canvases = [...state.panels.values()].filter((p) => p.chart).map(panelCanvas);
  const cols = 2;
  const w = Math.max(...canvases.map((c) => c.width), 600);
  const h = Math.max(...canvases.map((c) => c.height), 200);
  const out = document.createElement('canvas');
  out.width = w * cols; out.height = h * Math.ceil(canvases.length / cols);
  const ctx = out.getContext('2d');
  ctx.fillStyle = css('--bg'); ctx.fillRect(0, 0, out.width, out.height);
  canvases.forEach((c, i) => ctx.drawImage(c, (i % cols) * w, Math.floor(i / cols) * h));
  download(await toBlob(out), `zen-watcher-page-${stamp()}.png`);
}

async function exportRange(kind) {
  const { from, to } = bounds();
  if (kind === 'png') return downloadPagePng();
  if (kind === 'report') {
    const res = await api(`api/v1/report?from=${from}&to=${to}`);
    return download(await res.blob(), `zen-watcher-report-${stamp()}.html`);
  }
  const q = new URLSearchParams({ format: kind, from: String(from), to: String(to) });
  for (const p of state.panels.values()) for (const s of p.names) q.append('series', s.name);
  const res = await api(`api/v1/export?${q}`);
  download(await res.blob(), `zen-watcher-${stamp()}.${kind}`);
}

for (const b of $$('[data-export]')) {
  b.addEventListener('click', async () => {
    $('#export').open = false;
    try { await exportRange(b.dataset.export); } catch (e) { setStatus(`export failed: ${e.message}`, 'down'); }
  });
}

// ---------------------------------------------------------------- start

async function refreshMeta() {
  const meta = await json('api/v1/meta');
  const before = state.meta;
  state.meta = meta;
  const same = before && JSON.stringify(before.panels.map((p) => p.series)) === JSON.stringify(meta.panels.map((p) => p.series));
  if (same) return false;
  if (!before) buildPanels(meta);
  else for (const def of meta.panels) {
    const p = state.panels.get(def.id);
    if (p) p.names = def.series;
  }
  return true;
}

async function start() {
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
  try {
    state.meta = null;
    await refreshMeta();
  } catch (e) {
    if (!(e instanceof Unauthorized)) setStatus(`cannot reach the daemon: ${e.message}`, 'down');
    return;
  }
  await load();
  // What each open page costs the daemon is a budget (docs/benchmarks.md): the charts come
  // by the stream; the rest is asked for only as often as it can change, and not at all
  // while the page is hidden.
  const every = (ms, f) => state.timers.push(setInterval(() => { if (!document.hidden) f(); }, ms));
  // New series (a new source, device or container) appear within 15 s.
  every(15000, async () => {
    try { if (await refreshMeta()) load(); } catch { /* shown by the stream's status */ }
  });
  every(5000, refreshTables);
  every(10000, refreshInsights);
  every(2000, () => {
    if (!state.feedStale) return;
    state.feedStale = false;
    refreshFeed();
  });
  every(30000, () => { refreshFeed(); refreshTops(); if (state.range.kind === 'last') load(); });
}

// A module runs once the document is parsed, after the deferred chart library.
applyTheme(initialTheme());
start();
