// Inline-SVG charts of the benchmark page (no libraries): decode speed per run with its median,
// and where the time of a typical run goes.

const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs = {}, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Bars of decode tok/s per run (sustained mode), a dashed median line, this and `other`'s. */
export function decodeChart(report, other) {
  const W = 480;
  const H = 200;
  const pad = { l: 44, r: 10, t: 14, b: 28 };
  const runs = report.runs.map((r) => r.decode_tokens_per_s);
  const max = Math.max(...runs, other ? other.summary.decode_tokens_per_s.median : 0, 1e-9) * 1.15;
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'decode tokens per second per run', class: 'chart' });
  const y = (v) => pad.t + (H - pad.t - pad.b) * (1 - v / max);
  const bw = (W - pad.l - pad.r) / Math.max(runs.length, 1);
  svg.append(el('line', { x1: pad.l, y1: y(0), x2: W - pad.r, y2: y(0), class: 'axis' }));
  for (const frac of [0.5, 1]) {
    const v = (max / 1.15) * frac;
    svg.append(el('text', { x: pad.l - 4, y: y(v) + 4, 'text-anchor': 'end', class: 'tick' }, v.toPrecision(3)));
  }
  runs.forEach((v, i) => {
    const x = pad.l + i * bw + bw * 0.15;
    svg.append(el('rect', { x, y: y(v), width: bw * 0.7, height: Math.max(0, y(0) - y(v)), class: 'bar' }));
    svg.append(el('text', { x: x + bw * 0.35, y: H - 10, 'text-anchor': 'middle', class: 'tick' }, String(i + 1)));
  });
  const median = report.summary.decode_tokens_per_s.median;
  svg.append(el('line', { x1: pad.l, y1: y(median), x2: W - pad.r, y2: y(median), class: 'median' }));
  svg.append(el('text', { x: W - pad.r, y: y(median) - 4, 'text-anchor': 'end', class: 'label' }, `median ${median.toFixed(2)} tok/s`));
  if (other) {
    const m = other.summary.decode_tokens_per_s.median;
    svg.append(el('line', { x1: pad.l, y1: y(m), x2: W - pad.r, y2: y(m), class: 'other' }));
    svg.append(el('text', { x: pad.l + 4, y: y(m) - 4, class: 'label other-label' }, `compared ${m.toFixed(2)}`));
  }
  return svg;
}

/** One stacked bar per report: median image, encode, prefill and decode milliseconds. */
export function stageChart(reports) {
  const W = 480;
  const rowH = 34;
  const H = 30 + rowH * reports.length;
  const stages = [
    ['image', 'image_ms'],
    ['encode', 'encode_ms'],
    ['prefill', 'prefill_ms'],
    ['decode', 'decode_ms'],
  ];
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length ? (s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : 0;
  };
  const rows = reports.map(({ name, report }) => ({ name, parts: stages.map(([label, key]) => [label, median(report.runs.map((r) => r[key]))]) }));
  const total = Math.max(...rows.map((r) => r.parts.reduce((s, [, v]) => s + v, 0)), 1e-9);
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'time per stage', class: 'chart' });
  const left = 70;
  rows.forEach((row, i) => {
    let x = left;
    const yTop = 8 + i * rowH;
    svg.append(el('text', { x: 4, y: yTop + 17, class: 'tick' }, row.name));
    row.parts.forEach(([label, v], j) => {
      const w = ((W - left - 8) * v) / total;
      const r = el('rect', { x, y: yTop, width: Math.max(0, w), height: 24, class: `stage stage-${j}` });
      r.append(el('title', {}, `${label}: ${v.toFixed(0)} ms`));
      svg.append(r);
      x += w;
    });
  });
  stages.forEach(([label], j) => {
    const x = left + j * 90;
    svg.append(el('rect', { x, y: H - 16, width: 10, height: 10, class: `stage stage-${j}` }));
    svg.append(el('text', { x: x + 14, y: H - 7, class: 'tick' }, label));
  });
  return svg;
}
