// The Models, Credentials and Limits pages: each reads its admin routes and writes through them.
import { api, h, card, table, int, usd, when, actionButton, qs, periodStart } from './core.js';

const IN = ['text', 'image', 'audio', 'video', 'file'];
const OUT = ['text', 'image', 'audio', 'embeddings'];

export async function models(view, reload) {
  const configs = await api('/api/ai/configurations');
  const out = h('p', { class: 'error', id: 'models-error', role: 'alert' });
  const editor = h('div', { id: 'editor' });
  const rows = configs.map((c) => h('tr', { 'data-model': c.modelId },
    h('td', {}, c.modelId), h('td', {}, c.systemPrompt ? c.systemPrompt.slice(0, 80) : h('span', { class: 'muted' }, 'none')),
    h('td', {}, (c.fallbackModels || []).join(', ')), h('td', { 'data-cache': c.cache ? c.cache.scope : 'off' }, cacheText(c.cache)),
    h('td', {}, int(c.usageStats.totalRequests)),
    h('td', {}, usd(c.usageStats.totalCostUsd)),
    h('td', {},
      h('button', { type: 'button', class: 'plain', 'data-action': 'edit', onclick: () => edit(editor, c, reload) }, 'Edit'), ' ',
      actionButton('Disable', 'danger', async () => {
        await api(`/api/ai/configurations/${encodeURIComponent(c.id)}`, { method: 'DELETE' });
        reload();
      }, out))));
  view.append(h('h2', {}, 'Models'), out,
    card('Enabled configurations', configs.length
      ? table(['Model', 'System prompt', 'Fallbacks', 'Cache', 'Requests', 'Cost', ''], rows, { id: 'configs' })
      : h('p', { class: 'muted' }, 'None enabled.')),
    editor);

  const enabled = new Set(configs.map((c) => c.modelId));
  const list = h('tbody', { id: 'catalog' });
  const search = h('input', { id: 'catalog-search', type: 'search', placeholder: 'search the upstream catalog' });
  let catalog = [];
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const hits = catalog.filter((m) => !q || m.id.toLowerCase().includes(q) || String(m.name || '').toLowerCase().includes(q)).slice(0, 50);
    list.replaceChildren(...hits.map((m) => h('tr', { 'data-model': m.id },
      h('td', {}, m.id), h('td', {}, (m.inputModality || []).join(', ') + ' → ' + (m.outputModality || []).join(', ')),
      h('td', {}, m.inputPrice == null ? '' : `${usd(m.inputPrice)} / ${usd(m.outputPrice)}`),
      h('td', {}, enabled.has(m.id) ? h('span', { class: 'muted' }, 'enabled') : actionButton('Enable', '', async () => {
        const pick = (have, allowed, dflt) => { const x = (have || []).filter((v) => allowed.includes(v)); return x.length ? x : dflt; };
        await api('/api/ai/configurations', { method: 'POST', body: {
          modelId: m.id, provider: 'openrouter',
          inputModality: pick(m.inputModality, IN, ['text']), outputModality: pick(m.outputModality, OUT, ['text']),
        } });
        reload();
      }, out)))));
  };
  search.addEventListener('input', draw);
  view.append(card('Upstream catalog', h('div', { class: 'row' }, search),
    h('table', {}, h('thead', {}, h('tr', {}, ['Model', 'Modalities', 'Price in / out per 1M', ''].map((t) => h('th', {}, t)))), list)));
  catalog = await api('/api/ai/models');
  draw();
}

function edit(box, c, reload) {
  const prompt = h('textarea', { id: 'edit-system-prompt' }, c.systemPrompt || '');
  const fallbacks = h('input', { id: 'edit-fallbacks', size: 60, value: (c.fallbackModels || []).join(', ') });
  const policy = h('textarea', { id: 'edit-policy' }, JSON.stringify(c.contentPolicy || { denyPatterns: [], moderation: false }, null, 2));
  const out = h('p', { class: 'error', role: 'alert', id: 'edit-error' });
  const cacheForm = cacheFields(c.cache);
  const save = actionButton('Save', '', async () => {
    let contentPolicy;
    try {
      contentPolicy = JSON.parse(policy.value);
    } catch {
      throw new Error('Content policy is not valid JSON');
    }
    const fb = fallbacks.value.split(',').map((s) => s.trim()).filter(Boolean);
    await api(`/api/ai/configurations/${encodeURIComponent(c.id)}`, { method: 'PATCH', body: {
      systemPrompt: prompt.value === '' ? null : prompt.value, fallbackModels: fb, contentPolicy, cache: cacheForm.value(),
    } });
    reload();
  }, out);
  save.id = 'edit-save';
  box.replaceChildren(card(`Edit ${c.modelId}`,
    h('label', {}, 'System prompt', prompt),
    h('label', {}, 'Fallback models (comma-separated, up to 5)', fallbacks),
    h('label', {}, 'Content policy (denyPatterns, moderation)', policy), cacheForm.node, h('div', {}, save), out));
}

function cacheText(cache) {
  return cache ? `${int(cache.ttlSeconds)} s, ${cache.scope}` : h('span', { class: 'muted' }, 'off');
}

// The cache setting: off, or a TTL and a scope. The values go to the API as typed (a number when
// the box holds one) so the API's own check and its 400 message decide, as for any caller.
function cacheFields(cache) {
  const on = h('input', { id: 'edit-cache-on', type: 'checkbox', checked: Boolean(cache) });
  const ttl = h('input', { id: 'edit-cache-ttl', type: 'number', min: 1, max: 2592000, step: 1, value: cache ? cache.ttlSeconds : 3600 });
  const scope = h('select', { id: 'edit-cache-scope' }, ['project', 'user'].map((s) => h('option', { value: s, selected: cache && cache.scope === s }, s)));
  const extra = h('span', { class: 'row' }, h('label', {}, 'TTL (seconds, 1 to 2,592,000)', ttl),
    h('label', {}, 'Scope (project: callers share entries; user: each caller apart)', scope));
  const sync = () => { ttl.disabled = scope.disabled = !on.checked; };
  on.addEventListener('change', sync);
  sync();
  const value = () => {
    if (!on.checked) return null;
    const raw = ttl.value.trim();
    return { ttlSeconds: /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw, scope: scope.value };
  };
  return { node: h('fieldset', { class: 'cache' }, h('legend', {}, 'Response cache'),
    h('label', { class: 'check' }, on, ' answer repeated requests from the cache'), extra), value };
}

export async function credentials(view, reload) {
  const key = await api('/api/ai/gateway/config');
  const out = h('p', { class: 'error', id: 'byok-error', role: 'alert' });
  const input = h('input', { id: 'byok-key', type: 'password', autocomplete: 'off', size: 48, placeholder: 'sk-or-v1-…' });
  const save = actionButton(key.hasByokKey ? 'Replace key' : 'Set key', '', async () => {
    await api('/api/ai/gateway/config', { method: 'POST', body: { apiKey: input.value } });
    reload();
  }, out);
  save.id = 'byok-save';
  const remove = key.hasByokKey ? actionButton('Remove key', 'danger', async () => {
    await api('/api/ai/gateway/config', { method: 'DELETE' });
    reload();
  }, out) : null;
  if (remove) remove.id = 'byok-remove';
  let credits;
  try {
    const c = await api('/api/ai/credits');
    credits = `used ${usd(c.usage)}` + (c.limit == null ? ', no limit' : ` of ${usd(c.limit)}, ${usd(c.remaining)} left`);
  } catch (err) {
    credits = `unavailable: ${err.message}`;
  }
  view.append(h('h2', {}, 'Credentials'),
    card('Upstream key', h('p', {}, 'Key source: ', h('b', { id: 'key-source' }, key.keySource)),
      h('p', {}, 'BYOK key: ', h('code', { id: 'masked-key' }, key.maskedKey || 'none')),
      h('p', { class: 'muted' }, 'A new key is checked live with OpenRouter before it is stored (encrypted); it is never shown again.'),
      h('div', { class: 'row' }, input, save, remove), out),
    card('Credits of the active key', h('p', { id: 'credits' }, credits)));
}

const RULE = [['requestsPerMinute', 'Requests / minute'], ['burst', 'Burst'], ['tokensPerDay', 'Tokens / day'],
  ['tokensPerMonth', 'Tokens / month'], ['spendPerMonthUsd', 'Spend / month (USD)']];

function ruleInputs(prefix, rule) {
  return RULE.map(([k, label]) => h('label', {}, label,
    h('input', { id: `${prefix}-${k}`, type: 'number', min: 0, step: 'any', value: rule[k] ?? '', placeholder: 'unlimited' })));
}

function ruleValue(prefix, keepBlank) {
  const rule = {};
  for (const [k] of RULE) {
    const raw = document.getElementById(`${prefix}-${k}`).value.trim();
    if (raw === '' && keepBlank) continue;
    rule[k] = raw === '' ? (k === 'burst' ? 0 : null) : Number(raw);
  }
  return rule;
}

function meter(label, used, quota, fmt) {
  const p = h('progress', { max: quota || 1, value: quota ? Math.min(used, quota) : 0 });
  return h('p', { 'data-quota': label, 'data-used': used }, `${label}: ${fmt(used)} of ${quota == null ? 'unlimited' : fmt(quota)} `, p);
}

export async function limits(view, reload) {
  const cfg = await api('/api/ai/limits');
  const month = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), 1));
  const [today, thisMonth, overrides] = await Promise.all([
    api('/api/ai/usage/summary' + qs({ startDate: periodStart(1).toISOString() })),
    api('/api/ai/usage/summary' + qs({ startDate: month.toISOString() })), api('/api/ai/limits/users?limit=200'),
  ]);
  const out = h('p', { class: 'error', id: 'limits-error', role: 'alert' });
  const exempt = h('input', { id: 'exempt-admins', type: 'checkbox', checked: cfg.exemptAdmins });
  const save = actionButton('Save limits', '', async () => {
    await api('/api/ai/limits', { method: 'PUT', body: { perProject: ruleValue('project'), perUser: ruleValue('user'), exemptAdmins: exempt.checked } });
    reload();
  }, out);
  save.id = 'limits-save';
  const p = cfg.perProject;
  view.append(h('h2', {}, 'Limits'),
    card('Project use against its quotas',
      meter('Tokens today', today.totalTokens, p.tokensPerDay, int),
      meter('Tokens this month', thisMonth.totalTokens, p.tokensPerMonth, int),
      meter('Spend this month', thisMonth.totalCostUsd, p.spendPerMonthUsd, usd)),
    card('Project (all callers together)', ...ruleInputs('project', p)),
    card('Per user (default for each user)', ...ruleInputs('user', cfg.perUser),
      h('label', { class: 'check' }, exempt, ' admins are exempt')),
    h('div', {}, save, cfg.updatedAt ? h('span', { class: 'muted' }, ` last changed ${when(cfg.updatedAt)} by ${cfg.updatedBy}`) : null), out);

  const details = await Promise.all(overrides.records.map((o) => api(`/api/ai/limits/users/${encodeURIComponent(o.userId)}`)));
  const rows = details.map((o) => h('tr', { 'data-user': o.userId }, h('td', {}, o.userId),
    h('td', {}, h('code', {}, JSON.stringify(o.overrides))),
    h('td', {}, meter('Tokens today', o.usage.tokensToday, o.effective.tokensPerDay, int),
      meter('Tokens this month', o.usage.tokensThisMonth, o.effective.tokensPerMonth, int)),
    h('td', {}, actionButton('Remove', 'danger', async () => {
      await api(`/api/ai/limits/users/${encodeURIComponent(o.userId)}`, { method: 'DELETE' });
      reload();
    }, out))));
  const who = h('input', { id: 'override-user', placeholder: 'user id' });
  const add = actionButton('Save override', '', async () => {
    if (!who.value.trim()) throw new Error('A user id is required');
    await api(`/api/ai/limits/users/${encodeURIComponent(who.value.trim())}`, { method: 'PUT', body: ruleValue('override', true) });
    reload();
  }, out);
  add.id = 'override-save';
  view.append(card('Per-user overrides', rows.length ? table(['User', 'Overrides', 'Use', ''], rows, { id: 'overrides' })
    : h('p', { class: 'muted' }, 'No overrides.'),
  h('h3', {}, 'Override a user (blank = the default)'), h('div', { class: 'row' }, who), ...ruleInputs('override', {}), h('div', {}, add)));
}
