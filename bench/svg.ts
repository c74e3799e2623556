// A small hand-written SVG line chart for the bench scripts (no dependency):
// axes with "nice" ticks, one polyline per series, optional shaded x-ranges
// (e.g. rounds in which something was active), and a legend.

export interface Series {
  name: string;
  points: Array<[number, number]>;
  color: string;
  /** stroke-dasharray, e.g. "6 4". */
  dash?: string;
  /** Draw a dot at every point (default true). */
  dots?: boolean;
}

export interface Band {
  /** The band covers [x0, x1] in data coordinates. */
  x0: number;
  x1: number;
  color: string;
  /** Bands with the same label share one legend entry. */
  label: string;
  /** Written at the top of the band (e.g. the throttle state). */
  text?: string;
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  bands?: Band[];
  width?: number;
  height?: number;
  /** Integer ticks only on the x axis (rounds). */
  integerX?: boolean;
  /** Start the y axis at zero (default true; ignored with logY). */
  yFromZero?: boolean;
  /** Logarithmic y axis (values below 1 are drawn at 1, the axis' floor). */
  logY?: boolean;
}

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** About `count` round-valued ticks covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 6, integer = false): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  if (integer) step = Math.max(1, Math.round(step));
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

const fmt = (v: number) => {
  const a = Math.abs(v);
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  return String(Number(v.toPrecision(4)));
};

export function lineChart(c: LineChart): string {
  const W = c.width ?? 720,
    H = c.height ?? 420;
  const m = { left: 72, right: 20, top: 40, bottom: 80 };
  const pw = W - m.left - m.right,
    ph = H - m.top - m.bottom;
  const xs = c.series
    .flatMap((s) => s.points.map((p) => p[0]))
    .concat((c.bands ?? []).flatMap((b) => [b.x0, b.x1]));
  const ys = c.series.flatMap((s) => s.points.map((p) => p[1]));
  let x0 = xs.length ? Math.min(...xs) : 0,
    x1 = xs.length ? Math.max(...xs) : 1;
  let y0 = c.yFromZero === false && ys.length ? Math.min(...ys) : 0,
    y1 = ys.length ? Math.max(...ys) : 1;
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y1 = y0 + 1;
  const xt = niceTicks(x0, x1, Math.min(10, Math.max(2, Math.ceil(x1 - x0))), c.integerX);
  let yt: number[];
  let Y: (v: number) => number;
  if (c.logY) {
    const e1 = Math.max(1, Math.ceil(Math.log10(Math.max(1, y1))));
    yt = Array.from({ length: e1 + 1 }, (_, e) => 10 ** e);
    Y = (v: number) => m.top + ph - (Math.log10(Math.max(1, v)) / e1) * ph;
  } else {
    yt = niceTicks(y0, y1 * 1.05, 6);
    y0 = Math.min(y0, yt[0]);
    y1 = Math.max(y1, yt[yt.length - 1]);
    Y = (v: number) => m.top + ph - ((v - y0) / (y1 - y0)) * ph;
  }
  x0 = Math.min(x0, xt[0]);
  x1 = Math.max(x1, xt[xt.length - 1]);
  const X = (v: number) => m.left + ((v - x0) / (x1 - x0)) * pw;
  const o: string[] = [];
  o.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  o.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  o.push(
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(c.title)}</text>`,
  );
  // Bands under everything else.
  for (const b of c.bands ?? []) {
    const a = X(b.x0),
      z = X(b.x1);
    o.push(
      `<rect x="${a.toFixed(1)}" y="${m.top}" width="${Math.max(1, z - a).toFixed(1)}" height="${ph}" fill="${b.color}" fill-opacity="0.25"/>`,
    );
    if (b.text)
      o.push(
        `<text x="${((a + z) / 2).toFixed(1)}" y="${m.top + ph - 8}" text-anchor="middle" fill="#555">${esc(b.text)}</text>`,
      );
  }
  // Grid and ticks.
  for (const t of yt) {
    o.push(
      `<line x1="${m.left}" x2="${m.left + pw}" y1="${Y(t).toFixed(1)}" y2="${Y(t).toFixed(1)}" stroke="#ddd"/>`,
    );
    o.push(
      `<line x1="${m.left - 5}" x2="${m.left}" y1="${Y(t).toFixed(1)}" y2="${Y(t).toFixed(1)}" stroke="black"/>`,
    );
    o.push(
      `<text x="${m.left - 8}" y="${(Y(t) + 4).toFixed(1)}" text-anchor="end">${fmt(t)}</text>`,
    );
  }
  for (const t of xt) {
    o.push(
      `<line x1="${X(t).toFixed(1)}" x2="${X(t).toFixed(1)}" y1="${m.top + ph}" y2="${m.top + ph + 5}" stroke="black"/>`,
    );
    o.push(
      `<text x="${X(t).toFixed(1)}" y="${m.top + ph + 18}" text-anchor="middle">${fmt(t)}</text>`,
    );
  }
  o.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + ph}" stroke="black"/>`);
  o.push(
    `<line x1="${m.left}" x2="${m.left + pw}" y1="${m.top + ph}" y2="${m.top + ph}" stroke="black"/>`,
  );
  o.push(
    `<text x="${m.left + pw / 2}" y="${m.top + ph + 38}" text-anchor="middle">${esc(c.xLabel)}</text>`,
  );
  o.push(
    `<text transform="translate(18 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(c.yLabel)}</text>`,
  );
  // Series.
  for (const s of c.series) {
    if (s.points.length === 0) continue;
    const pts = s.points.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ');
    o.push(
      `<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
    );
    if (s.dots !== false)
      for (const [x, y] of s.points)
        o.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3" fill="${s.color}"/>`);
  }
  // Legend, in one row under the x-axis label.
  const entries: Array<{ label: string; color: string; kind: 'line' | 'band'; dash?: string }> =
    c.series.map((s) => ({ label: s.name, color: s.color, kind: 'line' as const, dash: s.dash }));
  const seen = new Set<string>();
  for (const b of c.bands ?? [])
    if (!seen.has(b.label)) {
      seen.add(b.label);
      entries.push({ label: b.label, color: b.color, kind: 'band' });
    }
  let lx = m.left;
  const ly = H - 16;
  for (const e of entries) {
    if (e.kind === 'line')
      o.push(
        `<line x1="${lx}" x2="${lx + 24}" y1="${ly - 4}" y2="${ly - 4}" stroke="${e.color}" stroke-width="2"${e.dash ? ` stroke-dasharray="${e.dash}"` : ''}/>`,
      );
    else
      o.push(
        `<rect x="${lx}" y="${ly - 11}" width="24" height="12" fill="${e.color}" fill-opacity="0.25"/>`,
      );
    o.push(`<text x="${lx + 30}" y="${ly}">${esc(e.label)}</text>`);
    lx += 30 + e.label.length * 7 + 24;
  }
  o.push('</svg>');
  return o.join('\n') + '\n';
}
