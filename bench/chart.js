'use strict';

// A hand-written SVG line chart: ns per get+return against pool size, both axes
// logarithmic, one line per implementation. No dependencies.

const COLORS = {
  native: '#d62728',
  original: '#1f77b4',
  floor: '#2ca02c',
  'generic-pool': '#9467bd',
};

function esc(text) {
  return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function fmtSize(n) {
  return n >= 1000 ? `${n / 1000}k` : String(n);
}

function fmtNs(ns) {
  if (ns >= 100) return ns.toFixed(0);
  if (ns >= 10) return ns.toFixed(1);
  return ns.toFixed(2);
}

// series: [{ name, label, dash?, points: [{ size, ns }] }] (points with ns null
// are skipped; `name` picks the colour, `dash` draws a dashed line)
function getReturnChart(series, { title, subtitle } = {}) {
  const W = 900;
  const H = 480;
  const m = { left: 84, right: 290, top: 78, bottom: 56 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;

  const sizes = [...new Set(series.flatMap((s) => s.points.map((p) => p.size)))].sort((a, b) => a - b);
  const values = series.flatMap((s) => s.points.map((p) => p.ns)).filter((v) => v > 0);
  const xmin = Math.log10(Math.min(...sizes));
  const xmax = Math.log10(Math.max(...sizes));
  const ymin = Math.floor(Math.log10(values.length ? Math.min(...values) : 1));
  const ymax = Math.ceil(Math.log10(values.length ? Math.max(...values) : 10));
  const yTop = ymax === ymin ? ymin + 1 : ymax;

  const x = (size) => m.left + ((Math.log10(size) - xmin) / (xmax - xmin || 1)) * pw;
  const y = (ns) => m.top + ph - ((Math.log10(ns) - ymin) / (yTop - ymin)) * ph;

  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${m.left}" y="24" font-size="15" font-weight="bold">${esc(title || 'get + return')}</text>`);
  if (subtitle) out.push(`<text x="${m.left}" y="42" fill="#555">${esc(subtitle)}</text>`);

  // y grid: decades, with 2x and 5x minor lines
  for (let d = ymin; d <= yTop; d++) {
    for (const k of [1, 2, 5]) {
      const v = k * 10 ** d;
      if (Math.log10(v) > yTop + 1e-9) continue;
      const yy = y(v).toFixed(1);
      const major = k === 1;
      out.push(
        `<line x1="${m.left}" y1="${yy}" x2="${m.left + pw}" y2="${yy}" stroke="${major ? '#cccccc' : '#eeeeee'}"/>`,
      );
      out.push(
        `<text x="${m.left - 8}" y="${yy}" text-anchor="end" dominant-baseline="middle" fill="${major ? '#333' : '#999'}">${esc(v >= 1 ? String(v) : v.toPrecision(1))}</text>`,
      );
    }
  }
  // x ticks: the measured sizes and the decades between
  const xt = new Set(sizes);
  for (let d = Math.ceil(xmin); d <= Math.floor(xmax); d++) xt.add(10 ** d);
  for (const size of [...xt].sort((a, b) => a - b)) {
    const xx = x(size).toFixed(1);
    const measured = sizes.includes(size);
    out.push(
      `<line x1="${xx}" y1="${m.top}" x2="${xx}" y2="${m.top + ph}" stroke="${measured ? '#dddddd' : '#f2f2f2'}"/>`,
    );
    out.push(
      `<text x="${xx}" y="${m.top + ph + 18}" text-anchor="middle" fill="${measured ? '#333' : '#999'}">${esc(fmtSize(size))}</text>`,
    );
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${H - 14}" text-anchor="middle">pool size (sockets, log scale)</text>`);
  out.push(
    `<text transform="translate(20 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">ns per get + return (log scale)</text>`,
  );

  let legendY = m.top + 8;
  out.push(
    `<text x="${m.left + pw + 16}" y="${m.top - 10}" font-size="10.5" fill="#555">values at ${esc(sizes.map(fmtSize).join(' / '))} sockets</text>`,
  );
  for (const s of series) {
    const color = COLORS[s.name] || '#444';
    const pts = s.points.filter((p) => p.ns > 0);
    if (pts.length > 0) {
      const path = pts.map((p, i) => `${i ? 'L' : 'M'}${x(p.size).toFixed(1)} ${y(p.ns).toFixed(1)}`).join(' ');
      out.push(
        `<path d="${path}" fill="none" stroke="${color}" stroke-width="2.5"${s.dash ? ' stroke-dasharray="7 5"' : ''}/>`,
      );
      for (const p of pts) {
        const cx = x(p.size).toFixed(1);
        const cy = y(p.ns).toFixed(1);
        out.push(
          s.dash
            ? `<circle cx="${cx}" cy="${cy}" r="3.5" fill="#ffffff" stroke="${color}" stroke-width="2"/>`
            : `<circle cx="${cx}" cy="${cy}" r="4" fill="${color}"/>`,
        );
      }
    }
    const lx = m.left + pw + 16;
    out.push(
      `<line x1="${lx}" y1="${legendY}" x2="${lx + 22}" y2="${legendY}" stroke="${color}" stroke-width="2.5"${s.dash ? ' stroke-dasharray="7 5"' : ''}/>`,
    );
    out.push(
      `<text x="${lx + 28}" y="${legendY}" dominant-baseline="middle">${esc(s.label || s.name)}${pts.length ? '' : ' (n/a)'}</text>`,
    );
    if (pts.length) {
      const values = sizes.map((size) => {
        const p = s.points.find((q) => q.size === size && q.ns > 0);
        return p ? fmtNs(p.ns) : 'n/a';
      });
      out.push(
        `<text x="${lx + 28}" y="${legendY + 15}" dominant-baseline="middle" font-size="10.5" fill="#555">${esc(values.join(' / '))} ns</text>`,
      );
    }
    legendY += pts.length ? 36 : 22;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

module.exports = { getReturnChart };
