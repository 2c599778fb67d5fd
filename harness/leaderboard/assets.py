"""The page's stylesheet and script, inlined into index.html so the page is one file that
makes no request. The script only displays leaderboard.json's precomputed numbers (views,
ranks, CIs): sorting, switching the stream and the ranking metric, choosing the columns,
and opening a method's drill-down. No framework, no statistics, no console output.
"""

CSS = """
:root { --fg: #1d232b; --muted: #5b6573; --line: #d9dee5; --bg: #ffffff; --alt: #f5f7fa;
  --accent: #2459a8; --good: #1f7a3d; --bad: #a33a2c; --front: #c2571a; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  background: var(--bg); margin: 0 auto; padding: 18px 28px 60px; max-width: 1400px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; }
h3 { font-size: 16px; margin: 0 0 6px; }
.sub { color: var(--muted); margin: 0 0 10px; }
.note { background: #fff8e6; border: 1px solid #ecd9a4; border-radius: 6px;
  padding: 10px 14px; margin: 10px 0; }
.note p { margin: 4px 0; }
.controls { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; margin: 14px 0 6px; }
.controls label { font-weight: 600; }
.controls select { margin-left: 6px; font: inherit; padding: 2px 4px; }
fieldset { border: 1px solid var(--line); border-radius: 6px; padding: 4px 10px; margin: 0; }
fieldset label { font-weight: 400; margin-right: 10px; white-space: nowrap; }
.power { color: var(--muted); margin: 6px 0 10px; }
table { border-collapse: collapse; }
.scroll { overflow-x: auto; }
#board { width: 100%; }
#board th, #board td { padding: 5px 8px; border-bottom: 1px solid var(--line);
  text-align: right; white-space: nowrap; }
#board th { background: var(--alt); cursor: pointer; user-select: none; position: sticky; top: 0; }
#board th.sorted-asc::after { content: " \\25B2"; font-size: 10px; }
#board th.sorted-desc::after { content: " \\25BC"; font-size: 10px; }
#board td.name, #board th.name { text-align: left; }
#board tbody tr { cursor: pointer; }
#board tbody tr:hover { background: #eef3fb; }
#board tbody tr.open { background: #e3ecf9; }
.ci { color: var(--muted); font-size: 12px; }
.rank { font-weight: 700; }
.tie { color: var(--muted); font-weight: 400; }
.badge { display: inline-block; font-size: 11px; border-radius: 9px; padding: 0 7px;
  margin-left: 6px; border: 1px solid; }
.verified { color: var(--good); border-color: var(--good); }
.self { color: var(--muted); border-color: var(--line); }
.flag { color: var(--bad); border-color: var(--bad); }
.sig-better { color: var(--good); font-weight: 600; }
.sig-worse { color: var(--bad); font-weight: 600; }
.legend-text { color: var(--muted); font-size: 13px; }
figure { margin: 0; }
svg.pareto { max-width: 100%; height: auto; font-size: 11px; }
svg .plot-bg { fill: #fbfcfe; stroke: var(--line); }
svg .grid { stroke: #e6e9ee; }
svg .tick { fill: var(--muted); }
svg .axis { fill: var(--fg); font-size: 12px; }
svg .pt circle { fill: #fff; stroke: var(--accent); stroke-width: 1.5; }
svg .pt text { fill: var(--fg); paint-order: stroke; stroke: #fbfcfe; stroke-width: 3px;
  stroke-linejoin: round; }
svg .leader { stroke: var(--muted); stroke-width: 0.8; }
svg .front-pt circle, svg .front-dot { fill: var(--front); stroke: var(--front); }
svg .other-dot { fill: #fff; stroke: var(--accent); stroke-width: 1.5; }
svg .front { fill: none; stroke: var(--front); stroke-width: 1.5; stroke-dasharray: 4 3; }
svg.spark polyline { fill: none; stroke: var(--accent); stroke-width: 1.4; }
svg.spark circle { fill: var(--accent); }
.drill { overflow-x: auto; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; margin: 12px 0; }
.drill dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 8px 0; }
.drill dt { color: var(--muted); } .drill dd { margin: 0; }
.drill table { margin: 8px 0; font-size: 13px; }
table.detectable { font-size: 13px; }
table.detectable th, table.detectable td { padding: 3px 8px; border-bottom: 1px solid var(--line);
  text-align: right; }
table.detectable td:first-child, table.detectable th:first-child { text-align: left; }
.drill th, .drill td { padding: 3px 8px; border-bottom: 1px solid var(--line); text-align: right; }
.drill th:first-child, .drill td:first-child { text-align: left; }
.drill caption { text-align: left; color: var(--muted); font-size: 12px; white-space: nowrap; }
.drill details { margin: 4px 0; } .drill summary { cursor: pointer; }
.cell-detail { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
code { font-size: 12px; background: var(--alt); padding: 1px 4px; border-radius: 3px;
  overflow-wrap: anywhere; }
.rejected li { font-family: ui-monospace, monospace; font-size: 12px; }
.lead { font-size: 16px; margin: 6px 0 8px; }
.dup { color: var(--muted); font-size: 12px; }
details#columns summary { cursor: pointer; font-weight: 600; }
dl.legend { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 8px 0;
  font-size: 13px; }
dl.legend dt { font-weight: 600; } dl.legend dd { margin: 0; }
.flagged { border: 1px solid var(--bad); border-radius: 6px; padding: 6px 12px; margin: 10px 0; }
.flagged ul { margin: 4px 0; padding-left: 20px; }
@media (max-width: 600px) {
  body { padding: 10px 10px 40px; }
  #board th, #board td { padding: 4px 5px; }
  #board td.name { white-space: normal; min-width: 7.5em; }
  #board td.name .badge { margin: 1px 2px 0 0; }
  #board td.score .ci { display: block; }
  dl.legend { grid-template-columns: 1fr; gap: 0; } dl.legend dd { margin: 0 0 6px; }
}
"""

JS = r"""
"use strict";
(function () {
  var D = JSON.parse(document.getElementById("lb-data").textContent);
  var info = {};
  D.metrics.forEach(function (m) { info[m.key] = m; });
  var state = { view: "all", metric: D.settings.default_metric, sort: "rank", desc: false };
  var board = document.getElementById("board");

  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c];
    });
  }
  function fmt(x, digits) {  // as Python's format() writes it: an exact half rounds to even
    if (x === null || x === undefined) { return "\u2013"; }
    var d = digits === undefined ? 3 : digits, scaled = Math.abs(x) * Math.pow(10, d);
    if (scaled % 1 === 0.5 && Math.floor(scaled) % 2 === 0) {
      return (x < 0 ? "-" : "") + (Math.floor(scaled) / Math.pow(10, d)).toFixed(d);
    }
    return x.toFixed(d);
  }
  window.leaderboardFormat = fmt;  // the page's number format, for tests and the console
  function stat(metric, name) {
    var v = D.views[state.view].metrics[metric];
    return v && v.methods[name] ? v.methods[name] : null;
  }
  function mean(metric) { return function (n) { var s = stat(metric, n); return s ? s.mean : null; }; }
  function vsRef(n) { var s = stat(state.metric, n); return s ? s.vs_reference : null; }
  function shown() {
    return Array.prototype.map.call(document.querySelectorAll("#shown input:checked"),
      function (e) { return e.value; });
  }

  // One column: its header, its sort value (best = "better" direction) and its cell.
  function columns() {
    var m = info[state.metric], ref = D.reference || "reference";
    var cols = [
      { key: "rank", label: "rank", hib: false, value: function (n) { return stat(state.metric, n).rank; },
        cell: rankCell },
      { key: "method", label: "method", text: true, value: function (n) { return n; }, cell: nameCell },
      { key: "score", label: m.label + " [95% CI]", hib: m.higher_is_better, value: mean(state.metric),
        cell: scoreCell },
      { key: "rint", label: "rank interval", hib: false,
        value: function (n) { return stat(state.metric, n).rank_interval[1]; },
        cell: function (n) { var ri = stat(state.metric, n).rank_interval;
          return ri[0] === ri[1] ? String(ri[0]) : ri[0] + "\u2013" + ri[1]; } }
    ];
    shown().forEach(function (k) {
      if (k === state.metric || !info[k]) { return; }
      cols.push({ key: "m:" + k, label: info[k].label, hib: info[k].higher_is_better,
        value: mean(k), cell: function (n) { return fmt(mean(k)(n)); } });
    });
    if (D.reference) {
      cols.push({ key: "wins", label: "vs " + ref + " W\u2013L\u2013T", hib: true,
        value: function (n) { var r = vsRef(n); return r ? r.wins - r.losses : null; },
        cell: winsCell });
      cols.push({ key: "p", label: "p vs " + ref + " (Holm)", hib: false,
        value: function (n) { var r = vsRef(n); return r ? r.p_holm : null; }, cell: pCell });
    }
    var generating = Object.keys(D.methods).some(function (n) { return D.methods[n].truncation; });
    if (generating) {
      cols.push({ key: "trunc", label: "truncated", hib: false,
        value: function (n) { var t = D.methods[n].truncation; return t ? t.share : null; },
        cell: truncCell });
    }
    cols.push({ key: "cost", label: D.cost_label, hib: false,
      value: function (n) { return D.methods[n].cost.hours; },
      cell: function (n) { var c = D.methods[n].cost;
        return (c.lower_bound ? "\u2265" : "") + fmt(c.hours, 2); } });
    return cols;
  }

  function rankCell(n) {
    var s = stat(state.metric, n), order = D.views[state.view].metrics[state.metric].order;
    var shared = order.filter(function (o) { return stat(state.metric, o).rank === s.rank; }).length > 1;
    var better = s.better.length ? "significantly better: " + s.better.join(", ") : "none significantly better";
    return '<span class="rank" title="' + esc(better) + '">' + (shared ? '<span class="tie">=</span>' : "") +
      s.rank + "</span>";
  }
  function nameCell(n) {
    var d = D.methods[n];
    var badge = d.verified ? '<span class="badge verified" title="verified ' + esc(d.verified_at) +
      '">verified</span>' : '<span class="badge self" title="no verification record matches ' +
      'the bundle">self-reported</span>';
    if (!d.tuning) { badge += '<span class="badge self">untuned</span>'; }
    else if (d.tuning.identical_to_sft) { badge += '<span class="badge flag">identical to SFT</span>'; }
    if (d.truncation && d.truncation.flagged) {
      badge += '<span class="badge flag">truncated ' + Math.round(100 * d.truncation.share) + "%</span>";
    }
    if (d.note) { badge += '<a class="badge flag" href="#notes">see note</a>'; }
    return "<strong>" + esc(n) + "</strong>" + badge;
  }
  function scoreCell(n) {
    var s = stat(state.metric, n);
    var ci = s.ci || [null, null];
    return fmt(s.mean) + ' <span class="ci">[' + fmt(ci[0]) + ", " + fmt(ci[1]) + "]</span>";
  }
  function truncCell(n) {
    var t = D.methods[n].truncation;
    if (!t) { return "\u2013"; }
    var text = Math.round(100 * t.share) + "%";
    return t.flagged ? '<span class="sig-worse">' + text + " at " + esc(t.budget || "?") +
      "</span>" : text;
  }
  function winsCell(n) {
    var r = vsRef(n);
    return r ? r.wins + "\u2013" + r.losses + "\u2013" + r.ties + " of " + r.n : "ref";
  }
  function pCell(n) {
    var r = vsRef(n);
    if (!r) { return "\u2013"; }
    var cls = r.significant ? (r.direction === "better" ? "sig-better" : "sig-worse") : "";
    return '<span class="' + cls + '">' + fmt(r.p_holm) + (r.significant ? " *" : "") + "</span>";
  }

  function sortedNames(cols) {
    var order = D.views[state.view].metrics[state.metric].order.slice();
    var col = cols.filter(function (c) { return c.key === state.sort; })[0] || cols[0];
    var pos = {};
    order.forEach(function (n, i) { pos[n] = i; });
    return order.sort(function (a, b) {
      var va = col.value(a), vb = col.value(b), c = 0;
      if (va === null || vb === null) { c = (va === null) - (vb === null); return c || pos[a] - pos[b]; }
      c = col.text ? (va < vb ? -1 : va > vb ? 1 : 0) : va - vb;
      if (!col.text && col.hib) { c = -c; }
      if (state.desc) { c = -c; }
      return c || pos[a] - pos[b];
    });
  }

  function render() {
    if (!D.views[state.view].metrics[state.metric]) {  // undefined in this view: the default
      state.metric = D.settings.default_metric;
      document.getElementById("metric").value = state.metric;
    }
    // the ranking metric is always shown (its column carries the CI): its box cannot hide it
    Array.prototype.forEach.call(document.querySelectorAll("#shown input"), function (e) {
      e.disabled = e.value === state.metric;
    });
    var cols = columns(), head = "<tr>", body = "";
    cols.forEach(function (c) {
      // the arrow shows the values' order: best first is descending where higher is better
      var descending = c.text ? state.desc : (!!c.hib !== state.desc);
      var cls = (c.key === "method" ? "name " : "") +
        (c.key === state.sort ? (descending ? "sorted-desc" : "sorted-asc") : "");
      head += '<th data-key="' + c.key + '" class="' + cls + '"' +
        (c.title ? ' title="' + esc(c.title) + '"' : "") + ">" + esc(c.label) + "</th>";
    });
    sortedNames(cols).forEach(function (n) {
      body += '<tr data-method="' + esc(n) + '">';
      cols.forEach(function (c) {
        body += '<td class="' + (c.key === "method" ? "name" : c.key) + '">' + c.cell(n) + "</td>";
      });
      body += "</tr>";
    });
    board.tHead.innerHTML = head + "</tr>";
    board.tBodies[0].innerHTML = body;
    renderPower();
    document.querySelectorAll("#pareto figure").forEach(function (f) {
      f.hidden = f.getAttribute("data-view") !== state.view;
    });
  }

  function renderPower() {
    var v = D.views[state.view], p = v.power, det = v.metrics[state.metric].detectable;
    var text = v.label + ": " + p.n_pairs + " pairs per method, Holm over all " +
      p.comparisons + " pairs of methods. ";
    if (p.sd_ratio_first !== null) {
      text += "A difference is significant only if it exceeds " + fmt(p.sd_ratio_first, 2) +
        " (first Holm step) to " + fmt(p.sd_ratio_last, 2) + " (last step) times the sd of " +
        "its per-pair differences.";
      if (det.sd_median) {  // null: too few pairs; 0: no spread (any difference counts)
        text += " For " + info[state.metric].label + " (median sd of paired differences " +
          fmt(det.sd_median, 4) + ") that is about " + fmt(det.first, 4) + " to " +
          fmt(det.last, 4) + " for a pair with that sd (less spread: smaller differences " +
          "count)" + (det.mdd80 ? "; a difference of " + fmt(det.mdd80, 4) + " is found with " +
          "80% power after the correction over all pairs." : ".");
      }
      text += " A shared rank says no method is significantly better, not that the " +
        "scores are close: a method whose score varies widely between seeds can share a " +
        "high rank with a low mean.";
    } else {
      text += "Too few pairs for a test: every method ties.";
    }
    document.getElementById("power").textContent = text;
  }

  board.tHead.addEventListener("click", function (e) {
    var th = e.target.closest("th");
    if (!th) { return; }
    var key = th.getAttribute("data-key");
    state.desc = key === state.sort ? !state.desc : false;
    state.sort = key;
    render();
  });
  board.tBodies[0].addEventListener("click", function (e) {
    var tr = e.target.closest("tr");
    if (!tr) { return; }
    var name = tr.getAttribute("data-method"), target = document.getElementById("drill-" + name);
    if (!target) { return; }
    var opening = target.hidden;
    document.querySelectorAll(".drill").forEach(function (d) { d.hidden = true; });
    document.querySelectorAll("#board tbody tr").forEach(function (r) { r.classList.remove("open"); });
    target.hidden = !opening;
    if (opening) { tr.classList.add("open"); target.scrollIntoView({ block: "nearest" }); }
  });
  document.getElementById("view").addEventListener("change", function (e) {
    state.view = e.target.value; render();
  });
  document.getElementById("metric").addEventListener("change", function (e) {
    state.metric = e.target.value; state.sort = "rank"; state.desc = false; render();
  });
  document.getElementById("shown").addEventListener("change", render);
  // the column choices are open on a wide screen, folded on a phone (the table first)
  document.getElementById("columns").open = !window.matchMedia("(max-width: 600px)").matches;
  render();
})();
"""
