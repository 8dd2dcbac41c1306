// The Usage and Audit pages: filtered, paginated records; usage also as a CSV download.
import { api, h, card, table, int, usd, when, qs, dayBound, pager } from './core.js';

const PAGE = 50;
const usageFilter = { from: '', to: '', configId: '', user: '', offset: 0 };
const auditFilter = { action: '', actor: '', from: '', to: '', offset: 0 };
const ACTIONS = ['CREATE_CONFIGURATION', 'UPDATE_CONFIGURATION', 'DISABLE_CONFIGURATION', 'SET_BYOK_OPENROUTER_KEY',
  'REMOVE_BYOK_OPENROUTER_KEY', 'UPDATE_LIMITS', 'SET_USER_LIMITS', 'DELETE_USER_LIMITS', 'RATE_LIMITED',
  'QUOTA_EXCEEDED', 'CONTENT_BLOCKED', 'PURGE_CACHE'];

// One page of usage records and the number matching. With a model chosen the per-configuration
// route answers (it has no paging or user filter, so both are applied here).
async function usagePage(f, offset, limit) {
  const range = { startDate: dayBound(f.from, false), endDate: dayBound(f.to, true) };
  if (f.configId) {
    let rows = await api(`/api/ai/usage/config/${encodeURIComponent(f.configId)}` + qs(range));
    if (f.user) rows = rows.filter((r) => r.userId === f.user);
    rows.sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
    return { records: rows.slice(offset, offset + limit), total: rows.length };
  }
  return api('/api/ai/usage' + qs({ ...range, userId: f.user, limit, offset }));
}

function filterForm(fields, state, onApply) {
  const inputs = fields.map(([key, label, el]) => {
    el.id = 'filter-' + key;
    el.value = state[key];
    return [key, h('label', {}, label, el)];
  });
  const apply = h('button', { type: 'submit', id: 'filter-apply' }, 'Apply');
  return h('form', { class: 'row', onsubmit: (e) => {
    e.preventDefault();
    for (const [key, label] of inputs) state[key] = label.lastChild.value.trim();
    state.offset = 0;
    onApply();
  } }, inputs.map((x) => x[1]), apply);
}

export async function usage(view, reload) {
  const configs = await api('/api/ai/configurations');
  const model = h('select', {}, h('option', { value: '' }, 'all models'), configs.map((c) => h('option', { value: c.id }, c.modelId)));
  const form = filterForm([['from', 'From', h('input', { type: 'date' })], ['to', 'To', h('input', { type: 'date' })],
    ['configId', 'Model', model], ['user', 'User id', h('input', {})]], usageFilter, reload);
  const page = await usagePage(usageFilter, usageFilter.offset, PAGE);
  const rows = page.records.map((r) => h('tr', { 'data-id': r.id }, h('td', {}, when(r.createdAt)), h('td', {}, r.modelId || ''),
    h('td', {}, r.userId || ''), h('td', {}, int(r.inputTokens)), h('td', {}, int(r.outputTokens)),
    h('td', {}, usd(r.costUsd)), h('td', {}, r.keySource || ''), h('td', {}, r.latencyMs == null ? '' : `${r.latencyMs} ms`),
    h('td', { 'data-cached': r.cached ? 'hit' : '' }, r.cached ? `hit, saved ${usd(r.savedUsd)}` : '')));
  const out = h('p', { class: 'error', role: 'alert' });
  const csv = h('button', { type: 'button', class: 'plain', id: 'csv', onclick: () => exportCsv(out).catch((e) => { out.textContent = e.message; }) }, 'Export CSV');
  view.append(h('h2', {}, 'Usage'), card(null, form),
    card(null, table(['Time', 'Model', 'User', 'Input', 'Output', 'Cost', 'Key', 'Latency', 'Cache'], rows, { id: 'usage-table' }),
      pager(usageFilter.offset, PAGE, page.total, (o) => { usageFilter.offset = o; reload(); }), csv, out));
}

const CSV_COLUMNS = ['createdAt', 'modelId', 'userId', 'inputTokens', 'outputTokens', 'totalTokens', 'imageCount',
  'costUsd', 'keySource', 'kind', 'latencyMs', 'id', 'configId', 'cached', 'savedUsd'];

// A cell as CSV text; a leading = + - @ is prefixed with ' so a spreadsheet never runs it as a formula.
function cell(v) {
  let s = v === null || v === undefined ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;
  return /[",\n\r]/.test(s) ? '"' + s.replaceAll('"', '""') + '"' : s;
}

async function exportCsv(out) {
  const all = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await usagePage(usageFilter, offset, 1000);
    all.push(...page.records);
    if (offset + 1000 >= page.total || !page.records.length) break;
  }
  const text = [CSV_COLUMNS.join(','), ...all.map((r) => CSV_COLUMNS.map((c) => cell(r[c])).join(','))].join('\r\n') + '\r\n';
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  const a = h('a', { href: url, download: 'usage.csv' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  out.textContent = '';
  out.className = 'muted';
  out.setAttribute('data-rows', all.length);
  out.textContent = `exported ${all.length} records`;
}

export async function audit(view, reload) {
  const action = h('select', {}, h('option', { value: '' }, 'any action'), ACTIONS.map((a) => h('option', { value: a }, a)));
  const form = filterForm([['action', 'Action', action], ['actor', 'Actor', h('input', {})],
    ['from', 'From', h('input', { type: 'date' })], ['to', 'To', h('input', { type: 'date' })]], auditFilter, reload);
  const page = await api('/api/ai/audit' + qs({
    action: auditFilter.action, actor: auditFilter.actor, startDate: dayBound(auditFilter.from, false),
    endDate: dayBound(auditFilter.to, true), limit: PAGE, offset: auditFilter.offset,
  }));
  // Details, actors and addresses come from callers: shown as text only.
  const rows = page.records.map((r) => h('tr', { 'data-action': r.action }, h('td', {}, when(r.createdAt)), h('td', {}, r.actor || ''),
    h('td', {}, r.action), h('td', {}, r.ipAddress || ''),
    h('td', {}, h('code', { class: 'details' }, JSON.stringify(r.details)))));
  view.append(h('h2', {}, 'Audit log'), card(null, form),
    card(null, table(['Time', 'Actor', 'Action', 'IP', 'Details'], rows, { id: 'audit-table' }),
      pager(auditFilter.offset, PAGE, page.total, (o) => { auditFilter.offset = o; reload(); })));
}
