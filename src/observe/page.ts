/**
 * The status page: one self-contained document (no file, font or script from anywhere else)
 * that reads /status.json and /lag.json every two seconds and draws the phase, the lag and its
 * last hour, the rates, the WAL the slot holds against the source's limit, the copy per table
 * with an estimate of the time left, and the last problem sync recorded. Narrow screens get one
 * column.
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pgferry</title>
<style>
  :root { color-scheme: light dark; --fg: #1d2330; --muted: #667085; --bg: #f6f7f9; --card: #fff; --accent: #2563eb; --bad: #c0362c; --ok: #1f8a4c; }
  @media (prefers-color-scheme: dark) { :root { --fg: #e6e8ec; --muted: #98a2b3; --bg: #11151c; --card: #1a2029; --accent: #60a5fa; } }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
  header { padding: 16px 20px; display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: baseline; }
  h1 { font-size: 20px; margin: 0; }
  #phase { font-weight: 600; padding: 2px 10px; border-radius: 999px; background: var(--accent); color: #fff; }
  #direction, #updated { color: var(--muted); font-size: 13px; }
  main { padding: 0 20px 20px; display: grid; gap: 12px; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); }
  .card { background: var(--card); border-radius: 10px; padding: 12px 14px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  .card h2 { margin: 0 0 4px; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
  .big { font-size: 24px; font-weight: 600; }
  .wide { grid-column: 1 / -1; }
  .bar { height: 8px; border-radius: 4px; background: rgba(127,127,127,.2); overflow: hidden; }
  .bar > div { height: 100%; background: var(--accent); }
  table { width: 100%; border-collapse: collapse; font-size: 14px; }
  th, td { text-align: left; padding: 6px 4px; border-bottom: 1px solid rgba(127,127,127,.2); }
  td.n { text-align: right; font-variant-numeric: tabular-nums; }
  #problem.bad { color: var(--bad); font-weight: 600; }
  #chart-note { color: var(--muted); font-size: 13px; }
  #chart { color: var(--accent); }
  svg { width: 100%; height: 140px; }
  @media (max-width: 560px) { .hide-narrow { display: none; } header { padding: 12px; } main { padding: 0 12px 12px; } }
</style>
</head>
<body>
<header><h1>pgferry</h1><span id="phase">…</span><span id="name"></span><span id="direction"></span><span id="updated"></span></header>
<main>
  <section class="card"><h2>Lag</h2><div class="big" id="lag">…</div><div id="lag-bytes"></div></section>
  <section class="card"><h2>Rate</h2><div class="big" id="rate">…</div><div id="rows-rate"></div></section>
  <section class="card"><h2>Applied since the copy</h2><div class="big" id="applied">…</div><div id="applied-rows"></div></section>
  <section class="card"><h2>WAL held on the source</h2><div class="big" id="wal">…</div><div class="bar"><div id="wal-bar" style="width:0"></div></div><div id="wal-limit"></div></section>
  <section class="card"><h2>Copy</h2><div class="big" id="copy">…</div><div class="bar"><div id="copy-bar" style="width:0"></div></div><div id="eta"></div></section>
  <section class="card wide"><h2>Lag, last hour</h2><div id="chart-note"></div><svg id="chart" viewBox="0 0 600 140" preserveAspectRatio="none" role="img" aria-label="lag over the last hour"></svg></section>
  <section class="card wide"><h2>Problems</h2><div id="problem">none recorded</div></section>
  <section class="card wide"><h2>Tables</h2>
    <table><thead><tr><th>Table</th><th>Copy</th><th class="n">Inserted</th><th class="n hide-narrow">Updated</th><th class="n hide-narrow">Deleted</th></tr></thead><tbody id="tables"></tbody></table>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const copySamples = [];
function bytes(n) {
  if (n === null || n === undefined) return "?";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0; while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}
function duration(s) {
  if (!isFinite(s)) return "?";
  if (s < 90) return Math.round(s) + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  return (s / 3600).toFixed(1) + " h";
}
function text(id, value) { $(id).textContent = value; }
function lagText(seconds) {
  if (seconds < 0.01) return (seconds * 1000).toFixed(1) + " ms";
  if (seconds < 1) return Math.round(seconds * 1000) + " ms";
  return seconds < 60 ? seconds.toFixed(2) + " s" : duration(seconds);
}
function draw(history) {
  const svg = $("chart");
  // The stream's own lag (to the millisecond) where sync measured it, else the monitor's.
  const points = history
    .map((p) => ({ at: p.at, lag: p.streamLagMs !== null && p.streamLagMs !== undefined ? p.streamLagMs / 1000 : p.lagSeconds }))
    .filter((p) => p.lag !== null);
  if (points.length < 2) { svg.innerHTML = ""; text("chart-note", "waiting for measurements"); return; }
  const t0 = points[0].at, t1 = points[points.length - 1].at, peak = Math.max(...points.map((p) => p.lag)), max = Math.max(0.001, peak);
  const xy = points.map((p) => [((p.at - t0) / Math.max(1, t1 - t0)) * 600, 130 - (p.lag / max) * 120]);
  svg.innerHTML = '<polyline fill="none" stroke="currentColor" stroke-width="2" vector-effect="non-scaling-stroke" points="' +
    xy.map((q) => q[0].toFixed(1) + "," + q[1].toFixed(1)).join(" ") + '"/>';
  text("chart-note", "peak " + lagText(peak) + " over " + duration((t1 - t0) / 1000) + "; now " + lagText(points[points.length - 1].lag));
}
function render(status, lag) {
  text("phase", status.phase);
  text("name", status.name ? "migration " + status.name : "");
  text("direction", status.direction ? status.direction.text : "");
  text("updated", "updated " + new Date().toLocaleTimeString());
  const monitor = status.lagSeconds === null || status.lagSeconds === undefined ? null : status.lagSeconds;
  text("lag", status.lagMs !== null && status.lagMs !== undefined ? lagText(status.lagMs / 1000) : monitor === null ? "?" : lagText(monitor));
  text("lag-bytes", bytes(status.lagBytes) + " of WAL behind" + (monitor === null ? "" : " (" + monitor.toFixed(1) + " s by the source's WAL position)") +
    (lag.catchUpSeconds ? ", caught up in about " + duration(lag.catchUpSeconds) : ""));
  text("rate", Math.round(status.transactionsPerSecond || 0) + " tx/s");
  text("rows-rate", Math.round(status.rowsPerSecond || 0) + " rows/s");
  text("applied", (status.appliedTransactions || 0).toLocaleString() + " tx");
  text("applied-rows", (status.appliedRows || 0).toLocaleString() + " row changes");
  text("wal", bytes(lag.retainedWalBytes));
  if (lag.walLimitBytes) {
    $("wal-bar").style.width = Math.min(100, (100 * (lag.retainedWalBytes || 0)) / lag.walLimitBytes).toFixed(1) + "%";
    text("wal-limit", "of " + bytes(lag.walLimitBytes) + " (max_slot_wal_keep_size)");
  } else text("wal-limit", "no limit on the source");
  const tables = status.tables || [];
  const units = tables.reduce((s, t) => s + t.units, 0), done = tables.reduce((s, t) => s + t.unitsDone, 0);
  text("copy", units === 0 ? "—" : done + " / " + units + " parts");
  $("copy-bar").style.width = units === 0 ? "0" : ((100 * done) / units).toFixed(1) + "%";
  copySamples.push({ at: Date.now(), done });
  while (copySamples.length > 60) copySamples.shift();
  const first = copySamples[0], rate = (done - first.done) / Math.max(1, (Date.now() - first.at) / 1000);
  text("eta", units === 0 ? "" : done === units ? "copied" : rate > 0 ? "about " + duration((units - done) / rate) + " left" : "estimating time left…");
  text("problem", status.problem ? status.problem.message + " (" + status.problem.at + ")" : "none recorded");
  $("problem").className = status.problem ? "bad" : "";
  $("tables").innerHTML = "";
  for (const t of tables) {
    const row = document.createElement("tr");
    row.dataset.table = t.name;
    const cells = [t.name, t.units > 0 ? t.copy + " " + t.unitsDone + "/" + t.units : t.copy, t.inserted, t.updated, t.deleted];
    cells.forEach((value, i) => {
      const cell = document.createElement("td");
      cell.textContent = typeof value === "number" ? value.toLocaleString() : value;
      if (i >= 2) cell.className = "n" + (i >= 3 ? " hide-narrow" : "");
      row.appendChild(cell);
    });
    $("tables").appendChild(row);
  }
  draw(lag.history || []);
}
async function refresh() {
  try {
    const [status, lag] = await Promise.all([fetch("status.json").then((r) => r.json()), fetch("lag.json").then((r) => r.json())]);
    render(status, lag);
  } catch (error) {
    text("updated", "cannot reach pgferry: " + error);
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
`;
