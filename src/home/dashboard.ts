// The web dashboard home serves (issue 16): nodes, jobs and their balances, and
// per migration its plots — pages sent per pre-copy round, the writable working
// set against the snapshot buffer, freeze and downtime (thesis Figures 6.5–6.7),
// updating live. The page holds no data and no secret: its script reads the API
// credential from the URL's fragment (never sent to a server) and polls the
// authenticated API with it. Everything shown is set as text, never as markup.

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>roam home</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.05em;margin-top:1.6em}
table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}
svg{border:1px solid #ccc;background:#fafafa;margin-right:1em}
.muted{color:#888}
</style></head><body>
<h1>roam home <span id="status" class="muted"></span></h1>
<h2>Nodes</h2><table id="nodes"></table>
<h2>Jobs</h2><table id="jobs"></table>
<h2>Migrations</h2><table id="moves"></table>
<h2>Last migration</h2><div id="plots"></div>
<script>
const key = location.hash.slice(1);
const api = (p) => fetch(p, { headers: { authorization: 'Bearer ' + key } }).then((r) => r.json());
function table(id, cols, rows) {
  const t = document.getElementById(id);
  t.replaceChildren();
  const head = t.insertRow();
  for (const c of cols) { const th = document.createElement('th'); th.textContent = c[0]; head.appendChild(th); }
  for (const r of rows) { const tr = t.insertRow(); for (const c of cols) tr.insertCell().textContent = String(c[1](r)); }
}
const NS = 'http://www.w3.org/2000/svg';
function chart(title, series, w = 360, h = 160) {
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('width', w); svg.setAttribute('height', h); svg.dataset.title = title;
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const n = Math.max(1, ...series.map((s) => s.values.length));
  const label = document.createElementNS(NS, 'text');
  label.setAttribute('x', 6); label.setAttribute('y', 14); label.textContent = title + ' (max ' + max + ')';
  svg.appendChild(label);
  for (const s of series) {
    const pts = s.values.map((v, i) => [20 + (i * (w - 30)) / Math.max(1, n - 1), h - 10 - (v / max) * (h - 30)]);
    if (s.bars) for (const [x, y] of pts) {
      const r = document.createElementNS(NS, 'rect');
      r.setAttribute('x', x - 4); r.setAttribute('y', y); r.setAttribute('width', 8); r.setAttribute('height', h - 10 - y);
      r.setAttribute('fill', s.colour); svg.appendChild(r);
    } else {
      const p = document.createElementNS(NS, 'polyline');
      p.setAttribute('points', pts.map((q) => q.join(',')).join(' '));
      p.setAttribute('fill', 'none'); p.setAttribute('stroke', s.colour); p.setAttribute('stroke-width', 2);
      svg.appendChild(p);
    }
  }
  return svg;
}
async function tick() {
  try {
    const [nodes, jobs, moves] = await Promise.all([api('/v1/nodes'), api('/v1/jobs'), api('/v1/moves')]);
    document.getElementById('status').textContent = 'updated ' + new Date().toLocaleTimeString();
    table('nodes', [['node', (n) => n.node], ['id', (n) => n.nodeId ?? '?'], ['jobs', (n) => n.jobs], ['free MiB', (n) => n.freeMiB ?? '?']], nodes);
    table('jobs', [['job', (j) => j.job], ['program', (j) => j.program], ['state', (j) => j.state], ['node', (j) => j.nodeId],
      ['balance', (j) => j.balance ?? '?'], ['session', (j) => (j.attached ? 'up' : 'down')], ['clients', (j) => j.clients], ['migrations', (j) => j.migrations]], jobs);
    table('moves', [['when', (m) => new Date(m.at).toLocaleTimeString()], ['job', (m) => m.job], ['to', (m) => m.node], ['rounds', (m) => m.rounds.length],
      ['freeze ms', (m) => m.freezeMs.toFixed(2)], ['downtime ms', (m) => (m.downtimeMs ?? NaN).toFixed(1)], ['decided ms', (m) => (m.confirmMs ?? NaN).toFixed(1)]], moves.slice().reverse());
    const last = moves[moves.length - 1];
    const plots = document.getElementById('plots');
    plots.replaceChildren();
    if (last) {
      plots.appendChild(chart('pages sent per round', [{ values: last.rounds.map((r) => r.sent), colour: '#4a7', bars: true }]));
      plots.appendChild(chart('WSS (red) against the snapshot buffer (blue)', [{ values: last.rounds.map((r) => r.wss), colour: '#c33' }, { values: last.rounds.map((r) => r.buffer), colour: '#36c' }]));
      plots.appendChild(chart('downtime per migration, ms', [{ values: moves.map((m) => Math.round(m.downtimeMs ?? 0)), colour: '#a5c', bars: true }]));
    }
  } catch (e) {
    document.getElementById('status').textContent = 'home unreachable: ' + e.message;
  }
}
tick();
setInterval(tick, 1000);
</script></body></html>
`;
