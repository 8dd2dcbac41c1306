// The page's entry: sign-in, the hash router, the Overview and the Connect pages.
import { KEY, api, h, card, int, usd, periodStart, dayKeys, qs } from './core.js';
import { stackedBars, hbars, legend } from './charts.js';
import { models, credentials, limits } from './admin.js';
import { usage, audit } from './records.js';
import { cache } from './cache.js';

const $ = (id) => document.getElementById(id);
const REFUSALS = ['RATE_LIMITED', 'QUOTA_EXCEEDED', 'CONTENT_BLOCKED'];
const state = { period: 7 };

const PAGES = { overview, models, cache, credentials, limits, usage, audit, connect };

async function overview(view) {
  const days = state.period;
  const start = periodStart(days);
  const since = { startDate: start.toISOString() };
  const summary = (extra) => api('/api/ai/usage/summary' + qs({ ...since, ...extra }));
  const [configs, byDay, byModel, byUser, key, byBatch] = await Promise.all([
    api('/api/ai/configurations'), summary({ groupBy: 'day' }), summary({ groupBy: 'model' }),
    summary({ groupBy: 'user' }), api('/api/ai/gateway/config'), summary({ groupBy: 'batch' }),
  ]);
  const perConfig = await Promise.all(configs.map((c) => summary({ groupBy: 'day', configId: c.id })));
  const refusals = await Promise.all(REFUSALS.map((a) => api('/api/ai/audit' + qs({ ...since, action: a, limit: 1 }))));
  let credits = null;
  try {
    credits = await api('/api/ai/credits');
  } catch (err) {
    credits = { error: err.message };
  }

  const period = h('select', { id: 'period', onchange: (e) => { state.period = Number(e.target.value); show('overview'); } },
    [1, 7, 30, 90].map((d) => h('option', { value: d, selected: d === days }, d === 1 ? 'today' : `last ${d} days`)));
  view.append(h('div', { class: 'row' }, h('h2', {}, 'Overview'), h('label', {}, 'Period', period)));

  const creditText = credits.error ? `credits unavailable: ${credits.error}`
    : `used ${usd(credits.usage)}` + (credits.limit == null ? ' · no limit' : ` of ${usd(credits.limit)} · ${usd(credits.remaining)} left`);
  view.append(card(null,
    stat('Requests', int(byDay.totalRequests), 'total-requests'),
    stat('Tokens', int(byDay.totalTokens), 'total-tokens'),
    stat('Cost', usd(byDay.totalCostUsd), 'total-cost'),
    stat('Key source', key.keySource + (key.maskedKey ? ` (${key.maskedKey})` : ''), 'key-source'),
    h('p', { class: 'muted', id: 'credits' }, creditText)));
  const dayList = dayKeys(start, days);
  const names = configs.map((c) => c.modelId);
  // One chart per metric, a stack per enabled model (plus what disabled models used).
  const byDayChart = (metric, field, format, title) => {
    const series = configs.map((c, i) => ({ name: c.modelId, values: byKey(perConfig[i].groups, field) }));
    const all = byKey(byDay.groups, field);
    const other = {};
    for (const d of dayList) {
      const rest = (all[d] || 0) - series.reduce((s, x) => s + (x.values[d] || 0), 0);
      if (rest > 1e-9) other[d] = rest;
    }
    if (Object.keys(other).length) series.push({ name: 'other (disabled models)', values: other });
    return card(title, stackedBars({ metric, days: dayList, series, format }), legend(series.map((s) => s.name)));
  };
  view.append(h('div', { class: 'grid' },
    byDayChart('requests', 'totalRequests', int, 'Requests by day'),
    byDayChart('tokens', 'totalTokens', int, 'Tokens by day'),
    byDayChart('cost', 'totalCostUsd', usd, 'Cost by day')));
  // The cache's figures beside its chart: one row, not a chart left alone on a row of its own.
  view.append(h('div', { class: 'grid' },
    card('Cache',
      stat('Hits', int(byDay.cacheHits), 'cache-hits', byDay.cacheHits),
      stat('Hit rate', pct(byDay.cacheHitRate), 'cache-hit-rate', byDay.cacheHitRate),
      stat('Saved', usd(byDay.savedUsd), 'cache-saved', byDay.savedUsd),
      h('p', { class: 'muted' }, 'Calls answered from the response and embeddings cache in the period, and what the upstream would have charged for them.')),
    byDayChart('saved', 'savedUsd', usd, 'Saved by the cache by day')));
  const top = (groups) => groups.map((g) => ({ key: g.key || 'unknown', value: g.totalRequests }))
    .sort((a, b) => b.value - a.value).slice(0, 10);
  view.append(h('div', { class: 'grid' },
    card('Top models (requests)', hbars({ name: 'top-models', items: top(byModel.groups), format: int })),
    card('Top users (requests)', hbars({ name: 'top-users', items: top(byUser.groups), format: int })),
    card('Refused and blocked calls', hbars({ name: 'refusals', items: REFUSALS.map((a, i) => ({ key: a, value: refusals[i].total })), format: int }),
      h('p', { class: 'muted' }, 'Calls refused by the gateway\u2019s limits and content policy, from the audit log. ' +
        'Upstream failures are not stored in the database: on AWS they are in the stack\u2019s CloudWatch dashboard.'))));
  const batches = byBatch.groups.filter((g) => g.key);  // '' = calls made live, not in a batch
  if (batches.length) {
    view.append(h('div', { class: 'grid' },
      card('Top batches (requests)', hbars({ name: 'top-batches', items: top(batches), format: int }),
        h('p', { class: 'muted' }, 'Usage of batch items in the period, by batch id.'))));
  }
  if (!names.length) view.append(h('p', { class: 'muted' }, 'No model is enabled yet: enable one on the Models page.'));
}

function stat(label, value, id, raw) {
  return h('span', { class: 'stat' }, label, h('b', { id, 'data-value': raw }, value));
}

const pct = (rate) => `${Math.round((Number(rate) || 0) * 1000) / 10}%`;

function byKey(groups, field) {
  return Object.fromEntries((groups || []).map((g) => [g.key, Number(g[field]) || 0]));
}

async function connect(view) {
  const base = location.origin;
  const snippets = [
    ['@insforge/sdk (JavaScript)', `import { createClient } from '@insforge/sdk';\n\nconst insforge = createClient({ baseUrl: '${base}', accessToken: USER_JWT });\nconst res = await insforge.ai.chat.completions.create({\n  model: 'openai/gpt-4o-mini',\n  messages: [{ role: 'user', content: 'Say hi' }],\n});`],
    ['OpenAI Python SDK', `from openai import OpenAI\n\nclient = OpenAI(base_url="${base}/api/ai/v1", api_key=USER_JWT)\nres = client.chat.completions.create(\n    model="openai/gpt-4o-mini",\n    messages=[{"role": "user", "content": "Say hi"}],\n)`],
    ['OpenAI JS SDK', `import OpenAI from 'openai';\n\nconst client = new OpenAI({ baseURL: '${base}/api/ai/v1', apiKey: USER_JWT });\nconst res = await client.chat.completions.create({\n  model: 'openai/gpt-4o-mini',\n  messages: [{ role: 'user', content: 'Say hi' }],\n});`],
    ['Anthropic Python SDK', `import anthropic\n\nclient = anthropic.Anthropic(base_url="${base}/api/ai", api_key=USER_JWT)\nmsg = client.messages.create(\n    model="anthropic/claude-3.5-haiku", max_tokens=256,\n    messages=[{"role": "user", "content": "Say hi"}],\n)`],
    ['curl', `curl ${base}/api/ai/v1/chat/completions \\\n  -H "Authorization: Bearer $USER_JWT" -H 'Content-Type: application/json' \\\n  -d '{"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi"}]}'`],
  ];
  view.append(h('h2', {}, 'Connect an app'),
    card('Base URL', h('pre', { id: 'base-url' }, base),
      h('p', { class: 'muted' }, 'Apps call with a user JWT of your backend (or the anon key); only enabled models answer.')));
  for (const [name, code] of snippets) {
    const pre = h('pre', {}, code);
    const copy = h('button', { type: 'button', class: 'plain', onclick: () => navigator.clipboard.writeText(code).then(() => { copy.textContent = 'Copied'; }) }, 'Copy');
    view.append(card(name, pre, copy));
  }
}

// Each page draws into a fresh element that replaces the view once complete; a page asked for
// while another is still loading wins, and the older one is dropped.
let drawing = 0;
async function show(page) {
  const view = $('view');
  const render = PAGES[page] ? page : 'overview';
  const mine = ++drawing;
  view.removeAttribute('data-ready');
  $('status').textContent = '';
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.getAttribute('href') === '#' + render);
  const box = h('div', { 'data-page': render });
  let failure = '';
  try {
    await PAGES[render](box, () => show(render));
  } catch (err) {
    failure = err.message;
  }
  if (mine !== drawing) return;
  view.replaceChildren(box);
  $('status').textContent = failure;
  view.setAttribute('data-ready', render);
}

function signedIn(yes) {
  $('signin').hidden = yes;
  $('nav').hidden = !yes;
  if (!yes) $('view').replaceChildren();
}

async function signIn(event) {
  event.preventDefault();
  const key = $('key').value.trim();
  sessionStorage.setItem(KEY, key);
  $('signin-error').textContent = '';
  try {
    await api('/api/ai/gateway/config');
  } catch (err) {
    sessionStorage.removeItem(KEY);
    $('signin-error').textContent = err.status === 401 || err.status === 403 ? 'That is not the admin API key.' : err.message;
    return;
  }
  $('key').value = '';
  signedIn(true);
  show(location.hash.slice(1) || 'overview');
}

document.addEventListener('signed-out', (e) => {
  sessionStorage.removeItem(KEY);
  signedIn(false);
  $('signin-error').textContent = e.detail;
});
$('signin').addEventListener('submit', signIn);
$('signout').addEventListener('click', () => {
  sessionStorage.removeItem(KEY);
  signedIn(false);
});
window.addEventListener('hashchange', () => {
  if (sessionStorage.getItem(KEY)) show(location.hash.slice(1));
});
signedIn(Boolean(sessionStorage.getItem(KEY)));
if (sessionStorage.getItem(KEY)) show(location.hash.slice(1) || 'overview');
