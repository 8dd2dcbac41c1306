// The Cache page: what the response and embeddings cache holds (per model, as bars), its last
// 30 days' hits and savings, and purges. A purge is asked for, then confirmed in the page, and
// what it deleted stays shown after the page redraws.
import { api, h, card, int, usd, when, actionButton, qs } from './core.js';
import { hbars } from './charts.js';

let lastPurge = null;  // {what, deleted, at}: the result of the last purge made from this tab

export async function cache(view, reload) {
  const [stats, configs] = await Promise.all([api('/api/ai/cache'), api('/api/ai/configurations')]);
  const recent = stats.last30Days;
  const out = h('p', { class: 'error', id: 'purge-error', role: 'alert' });
  const confirmBox = h('div', { id: 'purge-confirm', class: 'row' });

  view.append(h('h2', {}, 'Cache'),
    card(null,
      stat('Entries', int(stats.entries), 'cache-entries', stats.entries),
      stat('Size', bytes(stats.bytes), 'cache-bytes', stats.bytes),
      stat('Expired (to be swept)', int(stats.expiredEntries), 'cache-expired', stats.expiredEntries),
      stat('Hits, 30 days', `${int(recent.hits)} of ${int(recent.requests)}`, 'cache-hits-30d', recent.hits),
      stat('Saved, 30 days', usd(recent.savedUsd), 'cache-saved-30d', recent.savedUsd),
      h('p', { class: 'muted' }, `At most ${bytes(stats.maxTotalBytes)} in all; an answer over ${bytes(stats.maxEntryBytes)} is not stored. ` +
        'A model caches only when its configuration turns the cache on (Models \u2192 Edit).')));

  const label = (m) => `${m.modelId} (${m.kind})`;
  if (stats.models.length) {
    view.append(h('div', { class: 'grid' },
      card('Entries by model', hbars({ name: 'cache-entries', items: stats.models.map((m) => ({ key: label(m), value: m.entries })), format: int })),
      card('Size by model', hbars({ name: 'cache-bytes', items: stats.models.map((m) => ({ key: label(m), value: m.bytes })), format: bytes }),
        h('ul', { class: 'muted', id: 'cache-models' }, stats.models.map((m) => h('li', { 'data-model': m.modelId },
          `${label(m)}: ${entries(m.entries)}, oldest ${when(m.oldestAt) || '\u2013'}`))))));
  } else {
    view.append(card(null, h('p', { class: 'muted', id: 'cache-empty' }, 'The cache is empty.')));
  }

  // Ask, then confirm: the purge runs only from the confirm button.
  const ask = (what, params) => {
    const yes = actionButton('Purge', 'danger', async () => {
      const res = await api('/api/ai/cache' + qs(params), { method: 'DELETE' });
      lastPurge = { what, deleted: res.deleted, at: new Date().toISOString() };
      reload();
    }, out);
    yes.id = 'purge-yes';
    const no = h('button', { type: 'button', class: 'plain', id: 'purge-no', onclick: () => confirmBox.replaceChildren() }, 'Cancel');
    out.textContent = '';
    confirmBox.replaceChildren(h('span', {}, `Delete ${what}? This cannot be undone.`), yes, no);
  };
  const ids = [...new Set([...stats.models.map((m) => m.modelId), ...configs.map((c) => c.modelId)])].sort();
  const model = h('select', { id: 'purge-model' }, ids.map((id) => h('option', { value: id }, id)));
  const user = h('input', { id: 'purge-user', placeholder: 'user id' });
  const button = (id, text, onclick) => h('button', { type: 'button', class: 'plain', id, onclick }, text);
  view.append(card('Purge',
    h('p', { class: 'muted' }, 'Removes entries at once here and within a few seconds in every other process; each purge is in the audit log (PURGE_CACHE).'),
    h('div', { class: 'row' }, button('purge-all', 'Purge all\u2026', () => ask('every cache entry', { all: true }))),
    h('div', { class: 'row' }, h('label', {}, 'Model', model),
      button('purge-by-model', 'Purge model\u2026', () => ask(`the entries of model ${model.value}`, { modelId: model.value }))),
    h('div', { class: 'row' }, h('label', {}, 'User id (the entries that user\u2019s calls filled)', user),
      button('purge-by-user', 'Purge user\u2026', () => {
        const who = user.value.trim();
        if (!who) {
          out.textContent = 'A user id is required';
          return;
        }
        ask(`the entries filled by user ${who}`, { userId: who });
      })),
    confirmBox, out,
    lastPurge ? h('p', { id: 'purge-result', 'data-deleted': lastPurge.deleted },
      `Purged ${entries(lastPurge.deleted)}: ${lastPurge.what} (${when(lastPurge.at)}).`) : null));
}

function stat(label, value, id, raw) {
  return h('span', { class: 'stat' }, label, h('b', { id, 'data-value': raw }, value));
}

const entries = (n) => `${int(n)} ${Number(n) === 1 ? 'entry' : 'entries'}`;

function bytes(n) {
  const v = Number(n) || 0;
  if (v < 1024) return `${v} B`;
  if (v < 1024 * 1024) return `${(v / 1024).toFixed(1)} KiB`;
  return `${(v / 1024 / 1024).toFixed(1)} MiB`;
}
