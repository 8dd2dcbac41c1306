// Small SVG charts drawn with createElementNS: no library, no markup strings.
// Every bar carries its numbers as data attributes (data-series, data-key, data-value) and each
// chart its total (data-total), so what is drawn can be checked against what the API answered.

const NS = 'http://www.w3.org/2000/svg';
const PALETTE = 7;

function svgEl(tag, attrs) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

function text(x, y, value, attrs) {
  const t = svgEl('text', { x, y, ...attrs });
  t.textContent = value;
  return t;
}

export function colourClass(i) {
  return 'c' + (i % PALETTE);
}

export function legend(names) {
  const box = document.createElement('div');
  box.className = 'legend';
  names.forEach((name, i) => {
    const item = document.createElement('span');
    const sw = document.createElement('span');
    sw.className = 'swatch ' + colourClass(i);
    item.append(sw, document.createTextNode(name));
    box.append(item);
  });
  return box;
}

// Bars per day, stacked by series. days: ['2026-12-01', ...]; series: [{name, values: {day: n}}].
export function stackedBars({ metric, days, series, format }) {
  const width = 400, height = 200, left = 50, bottom = 22, top = 10;
  const totals = days.map((d) => series.reduce((s, x) => s + (x.values[d] || 0), 0));
  const max = Math.max(...totals, 0);
  const grand = totals.reduce((a, b) => a + b, 0);
  const svg = svgEl('svg', {
    viewBox: `0 0 ${width} ${height}`, width: '100%', role: 'img',
    'data-chart': 'stacked', 'data-metric': metric, 'data-total': round(grand),
  });
  const title = svgEl('title');
  title.textContent = `${metric} by day, stacked by model: total ${format(grand)}`;
  svg.append(title);
  const plotH = height - bottom - top;
  svg.append(svgEl('line', { x1: left, y1: top + plotH, x2: width, y2: top + plotH, stroke: '#c9ced6' }));
  svg.append(text(left - 6, top + 8, format(max), { 'text-anchor': 'end' }));
  svg.append(text(left - 6, top + plotH, '0', { 'text-anchor': 'end' }));
  const slot = (width - left) / Math.max(days.length, 1);
  const barW = Math.max(2, slot * 0.7);
  days.forEach((day, i) => {
    const x = left + i * slot + (slot - barW) / 2;
    let y = top + plotH;
    series.forEach((s, si) => {
      const v = s.values[day] || 0;
      if (!v) return;
      const h = max ? (v / max) * plotH : 0;
      y -= h;
      const rect = svgEl('rect', {
        x: x.toFixed(1), y: y.toFixed(1), width: barW.toFixed(1), height: Math.max(h, 0.5).toFixed(1),
        class: colourClass(si), 'data-series': s.name, 'data-key': day, 'data-value': round(v),
      });
      const tip = svgEl('title');
      tip.textContent = `${day} · ${s.name}: ${format(v)}`;
      rect.append(tip);
      svg.append(rect);
    });
    if (days.length <= 10 || i % Math.ceil(days.length / 8) === 0) {
      svg.append(text(x + barW / 2, height - 6, day.slice(5), { 'text-anchor': 'middle' }));
    }
  });
  return svg;
}

// Horizontal bars, one per item: [{key, value}], largest first.
export function hbars({ name, items, format }) {
  const rowH = 20, labelW = 150, width = 400;
  const max = Math.max(...items.map((i) => i.value), 0);
  const svg = svgEl('svg', {
    viewBox: `0 0 ${width} ${Math.max(items.length, 1) * rowH + 4}`, width: '100%', role: 'img',
    'data-chart': name, 'data-total': round(items.reduce((s, i) => s + i.value, 0)),
  });
  if (!items.length) svg.append(text(0, 16, 'nothing in this period'));
  items.forEach((item, i) => {
    const y = i * rowH + 2;
    const w = max ? ((width - labelW - 50) * item.value) / max : 0;
    const label = item.key.length > 24 ? item.key.slice(0, 23) + '…' : item.key;
    svg.append(text(0, y + 14, label));
    svg.append(svgEl('rect', {
      x: labelW, y, width: Math.max(w, 1).toFixed(1), height: rowH - 6, class: colourClass(i),
      'data-key': item.key, 'data-value': round(item.value),
    }));
    svg.append(text(labelW + w + 6, y + 13, format(item.value)));
  });
  return svg;
}

function round(n) {
  return Math.round(n * 1e6) / 1e6;
}
