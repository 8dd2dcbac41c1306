// What every page uses: the admin API client, an element builder that only makes text nodes,
// and number formats. Caller-influenced values (user ids, model ids, audit details, IPs) reach the
// document only through h(), i.e. as text nodes and attribute values, never as markup.

export const KEY = 'aigateway.adminKey';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// The admin key from sessionStorage as a bearer token; no cookies are sent or kept.
export async function api(path, { method = 'GET', body } = {}) {
  const headers = { Authorization: 'Bearer ' + (sessionStorage.getItem(KEY) || '') };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method, headers, credentials: 'omit', cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const type = res.headers.get('content-type') || '';
  const data = type.includes('json') ? await res.json() : null;
  if (!res.ok) {
    const err = new ApiError(res.status, data && data.error, (data && data.message) || res.statusText);
    if (res.status === 401) document.dispatchEvent(new CustomEvent('signed-out', { detail: err.message }));
    throw err;
  }
  return data;
}

export function h(tag, attrs, ...kids) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'value') node.value = String(v);
    else if (k === 'checked') node.checked = Boolean(v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    node.append(kid instanceof Node ? kid : String(kid)); // a string becomes a text node
  }
  return node;
}

export const qs = (params) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? '?' + s : '';
};

export const int = (n) => Math.round(Number(n) || 0).toLocaleString('en-US');
export const usd = (n) => '$' + (Number(n) || 0).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 6 });
export const when = (iso) => (iso ? iso.replace('T', ' ').replace(/\.\d+/, '').replace('+00:00', 'Z') : '');

// UTC midnight `days - 1` days ago: the start of a period of `days` whole days ending today.
export function periodStart(days) {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - (days - 1)));
}

export function dayKeys(start, days) {
  return Array.from({ length: days }, (_, i) => new Date(start.getTime() + i * 86400000).toISOString().slice(0, 10));
}

// A date input's value as the start or the end (inclusive) of that UTC day.
export function dayBound(value, end) {
  if (!value) return null;
  return value + (end ? 'T23:59:59.999Z' : 'T00:00:00Z');
}

export function card(title, ...kids) {
  return h('div', { class: 'card' }, title ? h('h3', {}, title) : null, ...kids);
}

export function table(head, rows, attrs) {
  return h('table', attrs || {}, h('thead', {}, h('tr', {}, head.map((c) => h('th', {}, c)))),
    h('tbody', {}, rows));
}

// A button whose click runs `action`, showing its failure in `out` (an element) instead of throwing.
export function actionButton(label, cls, action, out) {
  const btn = h('button', { type: 'button', class: cls });
  btn.textContent = label;
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    if (out) out.textContent = '';
    try {
      await action();
    } catch (err) {
      if (out) out.textContent = err.message;
    } finally {
      btn.disabled = false;
    }
  });
  return btn;
}

export function pager(offset, limit, total, go) {
  const page = Math.floor(offset / limit) + 1;
  const pages = Math.max(1, Math.ceil(total / limit));
  return h('div', { class: 'row pager' },
    h('button', { type: 'button', class: 'plain', 'data-action': 'prev', disabled: offset <= 0, onclick: () => go(offset - limit) }, 'Previous'),
    h('span', { class: 'muted', 'data-total': total }, `page ${page} of ${pages} · ${int(total)} records`),
    h('button', { type: 'button', class: 'plain', 'data-action': 'next', disabled: offset + limit >= total, onclick: () => go(offset + limit) }, 'Next'));
}
