/**
 * The status page of `sync --all-databases`: one row per database (phase, lag, copy, applied),
 * read from /status.json every two seconds; each database's name leads to its own page
 * (/database/<name>/, the single-database page). Self-contained like that page.
 */
export const INSTANCE_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pgferry — every database</title>
<style>
  :root { color-scheme: light dark; --fg: #1d2330; --muted: #667085; --bg: #f6f7f9; --card: #fff; --bad: #c0362c; }
  @media (prefers-color-scheme: dark) { :root { --fg: #e6e8ec; --muted: #98a2b3; --bg: #11151c; --card: #1a2029; } }
  body { margin: 0; padding: 16px 20px; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
  h1 { font-size: 20px; margin: 0 0 12px; }
  table { width: 100%; border-collapse: collapse; background: var(--card); border-radius: 10px; }
  th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid rgba(127,127,127,.2); }
  th { font-size: 12px; text-transform: uppercase; color: var(--muted); }
  td.n { text-align: right; font-variant-numeric: tabular-nums; }
  .bad { color: var(--bad); }
  #updated { color: var(--muted); font-size: 13px; }
</style>
</head>
<body>
<h1>pgferry: every database <span id="updated"></span></h1>
<table>
<thead><tr><th>database</th><th>phase</th><th>lag</th><th>copy</th><th>applied transactions</th><th>problem</th></tr></thead>
<tbody id="databases"></tbody>
</table>
<script>
function cell(row, value, numeric) {
  const td = document.createElement("td");
  if (value instanceof Node) td.appendChild(value); else td.textContent = value;
  if (numeric) td.className = "n";
  row.appendChild(td);
  return td;
}
function render(status) {
  const body = document.getElementById("databases");
  body.innerHTML = "";
  for (const d of status.databases) {
    const row = document.createElement("tr");
    row.dataset.database = d.database;
    const link = document.createElement("a");
    link.href = "database/" + encodeURIComponent(d.database) + "/";
    link.textContent = d.database;
    cell(row, link);
    cell(row, d.phase);
    cell(row, d.lagBytes == null ? "?" : d.lagBytes.toLocaleString() + " B" + (d.lagSeconds == null ? "" : ", " + d.lagSeconds.toFixed(1) + " s"), true);
    const tables = d.tables || [];
    cell(row, tables.filter((t) => t.copy === "copied").length + "/" + tables.length, true);
    cell(row, (d.appliedTransactions || 0).toLocaleString(), true);
    cell(row, d.problem ? d.problem.message : "").className = d.problem ? "bad" : "";
    body.appendChild(row);
  }
  document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
}
async function refresh() {
  try {
    render(await fetch("status.json").then((r) => r.json()));
  } catch (error) {
    document.getElementById("updated").textContent = "cannot reach pgferry: " + error;
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
`;
