// Admin dashboard: polls /api/admin/performance and /api/admin/queues with the admin's bearer
// token and draws the figures. Plain JS, no dependencies. Every value from the API is written
// with textContent (job errors and statements are untrusted text).
"use strict";

(function () {
  const TOKEN_KEY = "cadAdminToken";
  const WINDOWS = ["5m", "15m", "60m", "24h"];
  const HISTORY_MAX = 120;
  const REQUEST_TIMEOUT_MS = 15000;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const params = new URLSearchParams(location.search);
  const intervalMs = Math.max(1000, Number(params.get("interval")) || 5000);
  // Relative to the page, so a stage prefix (/prod/admin/dashboard) keeps working.
  const apiBase = new URL("../api/admin/", location.href);

  const state = { perfLoaded: false, queuesLoaded: false, history: [], timer: null, lastError: {} };

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function svgEl(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function byTestId(id) { return document.querySelector('[data-testid="' + id + '"]'); }

  function setCell(testId, text) {
    const c = byTestId(testId);
    if (c) c.textContent = text;
  }

  function isNum(v) { return typeof v === "number" && Number.isFinite(v); }
  function fmtMs(v) { return isNum(v) ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) : "n/a"; }
  function fmtPct(v) { return isNum(v) ? (v * 100).toFixed(1) + " %" : "n/a"; }
  function fmtRate(v) { return isNum(v) ? (v >= 10 ? v.toFixed(1) : v.toFixed(3)) : "n/a"; }
  function fmtInt(v) { return isNum(v) ? String(Math.round(v)) : "n/a"; }
  function fmtAge(secs) {
    if (!isNum(secs)) return "–";
    if (secs < 120) return secs + " s";
    if (secs < 7200) return Math.round(secs / 60) + " min";
    if (secs < 172800) return (secs / 3600).toFixed(1) + " h";
    return (secs / 86400).toFixed(1) + " d";
  }
  function fmtTime(iso) {
    const d = new Date(iso);
    return isNaN(d) ? String(iso || "") : d.toLocaleTimeString();
  }

  // ----- token --------------------------------------------------------------------------------

  function readToken() {
    const fromUrl = params.get("token");
    if (fromUrl) {
      sessionStorage.setItem(TOKEN_KEY, fromUrl.trim());
      // Keep the token out of the address bar and the history.
      params.delete("token");
      const rest = params.toString();
      history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
    }
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function setStatus(text, isError) {
    const s = $("status");
    s.textContent = text;
    s.classList.toggle("error", !!isError);
  }

  // ----- fetching -----------------------------------------------------------------------------

  async function api(path, options) {
    const token = sessionStorage.getItem(TOKEN_KEY) || "";
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), REQUEST_TIMEOUT_MS);
    try {
      const resp = await fetch(new URL(path, apiBase), Object.assign({
        headers: { "Authorization": "Bearer " + token, "Accept": "application/json" },
        cache: "no-store",
        signal: ctrl.signal,
      }, options || {}));
      let body = null;
      const text = await resp.text();
      try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
      if (!resp.ok) {
        let msg = "HTTP " + resp.status;
        if (body && body.error && body.error.message) msg += ": " + body.error.message;
        else if (body && body.message) msg += ": " + body.message;
        if (resp.status === 401) msg += " (token missing, expired or invalid)";
        if (resp.status === 403) msg += " (this token is not an admin's)";
        throw new Error(msg);
      }
      return body;
    } catch (e) {
      if (e.name === "AbortError") throw new Error("no answer within " + REQUEST_TIMEOUT_MS / 1000 + " s");
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  // ----- performance --------------------------------------------------------------------------

  function renderWindows(metrics) {
    $("metrics-error").textContent = metrics.error ? "Metrics unavailable: " + metrics.error : "";
    const byName = {};
    for (const w of metrics.windows || []) byName[w.window] = w;
    for (const name of WINDOWS) {
      const w = byName[name];
      const lat = (w && w.latency_ms) || {};
      setCell("latency-p50-" + name, w ? fmtMs(lat.p50) : "n/a");
      setCell("latency-p95-" + name, w ? fmtMs(lat.p95) : "n/a");
      setCell("latency-p99-" + name, w ? fmtMs(lat.p99) : "n/a");
      setCell("throughput-" + name, w ? fmtRate(w.requests_per_second) : "n/a");
      setCell("requests-" + name, w ? fmtInt(w.requests) : "n/a");
      setCell("error-rate-" + name, w ? fmtPct(w.error_rate) : "n/a");
      setCell("cache-hit-" + name, w ? fmtPct(w.cache_hit_ratio) : "n/a");
      setCell("job-failure-" + name, w ? fmtPct(w.job_failure_rate) : "n/a");
    }
    return byName;
  }

  // The smallest 1, 2, 2.5 or 5 × 10^k at or above v, so axis ticks are round numbers.
  function niceCeil(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  // Grouped vertical bars: one group per window, one bar per series.
  function groupedBars(svg, groups, series, opts) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const W = 520, H = 200, left = 48, right = 10, top = 12, bottom = 26;
    const plotW = W - left - right, plotH = H - top - bottom;
    let max = opts.min || 0;
    for (const g of groups) for (const s of series) {
      const v = g.values[s.key];
      if (isNum(v) && v > max) max = v;
    }
    max = opts.fixedMax || niceCeil(max > 0 ? max * 1.05 : 1);
    const y = v => top + plotH - (v / max) * plotH;
    svg.appendChild(svgEl("line", { x1: left, y1: top + plotH, x2: W - right, y2: top + plotH, class: "axis" }));
    for (let i = 0; i <= 4; i++) {
      const v = (max / 4) * i;
      svg.appendChild(svgEl("line", { x1: left, y1: y(v), x2: W - right, y2: y(v), class: "axis" }));
      svg.appendChild(svgEl("text", { x: left - 4, y: y(v) + 4, "text-anchor": "end" }, opts.tick(v)));
    }
    if (isNum(opts.threshold) && opts.threshold <= max) {
      svg.appendChild(svgEl("line", { x1: left, y1: y(opts.threshold), x2: W - right, y2: y(opts.threshold), class: "threshold" }));
    }
    const groupW = plotW / Math.max(groups.length, 1);
    const barW = Math.min(28, (groupW - 16) / series.length);
    groups.forEach((g, gi) => {
      const gx = left + gi * groupW + (groupW - barW * series.length) / 2;
      series.forEach((s, si) => {
        const v = g.values[s.key];
        const x = gx + si * barW;
        if (isNum(v)) {
          const rect = svgEl("rect", {
            x: x + 1, y: y(v), width: barW - 2, height: Math.max(0, top + plotH - y(v)),
            fill: s.color, "data-testid": opts.id + "-" + s.key + "-" + g.label,
          });
          rect.appendChild(svgEl("title", {}, s.key + " " + g.label + ": " + opts.tick(v)));
          svg.appendChild(rect);
        } else {
          svg.appendChild(svgEl("text", { x: x + barW / 2, y: top + plotH - 4, "text-anchor": "middle", fill: "#999" }, "–"));
        }
      });
      svg.appendChild(svgEl("text", { x: left + gi * groupW + groupW / 2, y: H - 8, "text-anchor": "middle" }, g.label));
    });
  }

  function renderCharts(byName, thresholds) {
    const groups = WINDOWS.map(name => {
      const w = byName[name] || {};
      const lat = w.latency_ms || {};
      return { label: name, values: { p50: lat.p50, p95: lat.p95, p99: lat.p99, hit: w.cache_hit_ratio, err: w.error_rate } };
    });
    const css = getComputedStyle(document.documentElement);
    const c = name => css.getPropertyValue(name).trim();
    groupedBars($("latency-chart"), groups,
      [{ key: "p50", color: c("--p50") }, { key: "p95", color: c("--p95") }, { key: "p99", color: c("--p99") }],
      { id: "latency-bar", tick: v => v >= 100 ? v.toFixed(0) : v.toFixed(1), threshold: thresholds.response_time_p95_ms });
    groupedBars($("ratio-chart"), groups,
      [{ key: "hit", color: c("--ok") }, { key: "err", color: c("--bad") }],
      { id: "ratio-bar", fixedMax: 1, tick: v => (v * 100).toFixed(0) + "%", threshold: thresholds.cache_hit_ratio });
  }

  function renderHistory(byName) {
    const w = byName["5m"];
    if (w) {
      state.history.push({ t: Date.now(), p95: w.latency_ms && w.latency_ms.p95, rps: w.requests_per_second });
      if (state.history.length > HISTORY_MAX) state.history.shift();
    }
    const canvas = $("history-chart");
    const ctx = canvas.getContext("2d");
    const W = canvas.width, H = canvas.height, pad = 36, top = 40;
    ctx.clearRect(0, 0, W, H);
    ctx.font = "20px system-ui, sans-serif";
    ctx.strokeStyle = "#e3e6eb";
    ctx.lineWidth = 1;
    ctx.strokeRect(pad, top, W - 2 * pad, H - pad - top);
    const pts = state.history;
    if (pts.length < 2) {
      ctx.fillStyle = "#667085";
      ctx.fillText("collecting… (" + pts.length + " sample)", pad + 10, H / 2);
      return;
    }
    const css = getComputedStyle(document.documentElement);
    const line = (key, color, side) => {
      const vals = pts.map(p => p[key]).filter(isNum);
      const max = Math.max(1e-9, ...vals) * 1.1;
      ctx.strokeStyle = color;
      ctx.lineWidth = 3;
      ctx.beginPath();
      let started = false;
      pts.forEach((p, i) => {
        if (!isNum(p[key])) { started = false; return; }
        const x = pad + (i / (pts.length - 1)) * (W - 2 * pad);
        const y = top + (H - pad - top) * (1 - p[key] / max);
        if (started) ctx.lineTo(x, y); else ctx.moveTo(x, y);
        started = true;
      });
      ctx.stroke();
      ctx.fillStyle = color;
      const label = key === "p95" ? fmtMs(max / 1.1) + " ms" : fmtRate(max / 1.1) + "/s";
      ctx.textAlign = side === "left" ? "left" : "right";
      ctx.fillText("max " + label, side === "left" ? pad + 6 : W - pad - 6, 28);
      ctx.textAlign = "left";
    };
    line("p95", css.getPropertyValue("--p95").trim(), "left");
    line("rps", css.getPropertyValue("--warn").trim(), "right");
    ctx.fillStyle = "#667085";
    ctx.fillText(new Date(pts[0].t).toLocaleTimeString(), pad, H - 8);
    ctx.textAlign = "right";
    ctx.fillText(new Date(pts[pts.length - 1].t).toLocaleTimeString(), W - pad, H - 8);
    ctx.textAlign = "left";
  }

  function renderAlerts(doc) {
    const list = $("alerts");
    list.textContent = "";
    const alerts = doc.alerts || [];
    for (const a of alerts) {
      const li = el("li", { "data-testid": "alert-" + a.kind + "-" + a.subject, "data-kind": a.kind });
      li.appendChild(el("span", { class: "alert-kind" }, a.kind.replace(/_/g, " ")));
      li.appendChild(el("span", {}, a.message));
      li.appendChild(el("span", { class: "muted" }, " · " + a.window));
      list.appendChild(li);
    }
    for (const u of doc.alerts_unavailable || []) {
      list.appendChild(el("li", { class: "unavailable", "data-testid": "alert-unavailable" }, "Not evaluated — " + u));
    }
    if (!alerts.length && !(doc.alerts_unavailable || []).length) {
      list.appendChild(el("li", { class: "none", "data-testid": "alert-none" }, "No threshold is breached."));
    }
    byTestId("alert-count").textContent = "(" + alerts.length + ")";
  }

  function renderDepths(queues, thresholds) {
    $("queue-depths-error").textContent = queues.error ? "Queues: " + queues.error : "";
    const svg = $("depth-chart");
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const items = queues.items || [];
    const W = 520, rowH = 34, left = 120, right = 60, top = 6;
    let max = 10;
    for (const q of items) {
      if (isNum(q.depth)) max = Math.max(max, q.depth);
      if (isNum(q.dlq_depth)) max = Math.max(max, q.dlq_depth);
    }
    const limit = thresholds.queue_length;
    if (isNum(limit) && max > limit * 0.5) max = Math.max(max, limit);
    max *= 1.05;
    const plotW = W - left - right;
    const x = v => left + (v / max) * plotW;
    items.forEach((q, i) => {
      const y0 = top + i * rowH;
      svg.appendChild(svgEl("text", { x: left - 6, y: y0 + 16, "text-anchor": "end" }, q.queue));
      if (q.error) {
        svg.appendChild(svgEl("text", { x: left, y: y0 + 16, fill: "#c53030" }, "unreadable"));
        return;
      }
      const g = svgEl("g", { "data-testid": "queue-bar-" + q.queue, "data-depth": q.depth, "data-dlq-depth": q.dlq_depth });
      g.appendChild(svgEl("rect", { x: left, y: y0 + 4, width: Math.max(1, x(q.depth || 0) - left), height: 12, fill: "#2f6fc4" }));
      g.appendChild(svgEl("rect", { x: left, y: y0 + 18, width: Math.max(q.dlq_depth ? 2 : 0, x(q.dlq_depth || 0) - left), height: 8, fill: "#c53030" }));
      g.appendChild(svgEl("text", { x: x(q.depth || 0) + 4, y: y0 + 15 }, fmtInt(q.depth)));
      g.appendChild(svgEl("text", { x: x(q.dlq_depth || 0) + 4, y: y0 + 27, fill: "#c53030" }, "DLQ " + fmtInt(q.dlq_depth)));
      svg.appendChild(g);
    });
    if (isNum(limit) && limit <= max) {
      svg.appendChild(svgEl("line", { x1: x(limit), y1: 0, x2: x(limit), y2: top + items.length * rowH, class: "threshold" }));
    }
    svg.setAttribute("viewBox", "0 0 " + W + " " + Math.max(40, top + items.length * rowH + 4));
  }

  function renderDatabase(db) {
    $("database-error").textContent = db.error ? "Database report unavailable: " + db.error : "";
    const pools = $("pools");
    if (db.pools) {
      const p = db.pools;
      const fmtPool = (name, s) => name + ": " + s.in_use + " in use, " + s.idle + " idle, " + s.size + "/" + s.max_connections + (s.closed ? " (closed)" : "");
      let text = fmtPool("writer", p.writer);
      if (p.reader) text += " · " + fmtPool("reader", p.reader);
      if (p.acquire) text += " · acquire waits: " + p.acquire.count + ", p95 " + fmtMs(p.acquire.p95_ms) + " ms, max " + fmtMs(p.acquire.max_ms) + " ms";
      if (isNum(db.statements_observed)) text += " · statements observed: " + db.statements_observed;
      pools.textContent = text;
    } else {
      pools.textContent = "–";
    }
    const slow = $("slow-body");
    slow.textContent = "";
    for (const q of (db.slow_queries || []).slice(0, 20)) {
      const tr = el("tr", { "data-testid": "slow-query-row" });
      tr.appendChild(el("td", {}, fmtTime(q.at)));
      tr.appendChild(el("td", {}, fmtMs(q.duration_ms)));
      const stmt = el("td", { class: "text" });
      stmt.appendChild(el("code", {}, q.fingerprint));
      stmt.appendChild(el("div", { class: "muted" }, q.plan_status));
      tr.appendChild(stmt);
      const rec = el("td", { class: "text" });
      const recs = q.recommendations || [];
      if (!recs.length) rec.appendChild(el("span", { class: "muted" }, "none"));
      for (const r of recs) {
        const d = el("div", { "data-testid": "recommendation" });
        d.appendChild(el("b", {}, String(r.kind || "").replace(/_/g, " ") + (r.relation ? " on " + r.relation : "") + ": "));
        d.appendChild(el("span", {}, r.suggestion || ""));
        rec.appendChild(d);
      }
      tr.appendChild(rec);
      slow.appendChild(tr);
    }
    if (!slow.firstChild) {
      const tr = el("tr");
      tr.appendChild(el("td", { colspan: "4", class: "muted text" }, db.error ? "–" : "no slow query recorded"));
      slow.appendChild(tr);
    }
    const top = $("top-body");
    top.textContent = "";
    for (const s of db.top_statements || []) {
      const tr = el("tr", { "data-testid": "top-statement-row" });
      const stmt = el("td", { class: "text" });
      stmt.appendChild(el("code", {}, s.fingerprint));
      tr.appendChild(stmt);
      tr.appendChild(el("td", {}, fmtInt(s.calls)));
      tr.appendChild(el("td", {}, fmtMs(s.total_ms)));
      tr.appendChild(el("td", {}, fmtMs(s.mean_ms)));
      tr.appendChild(el("td", {}, fmtMs(s.p95_ms)));
      tr.appendChild(el("td", {}, fmtInt(s.slow_calls)));
      top.appendChild(tr);
    }
    const pg = db.pg_stat_statements;
    $("pg-stat").textContent = !pg ? "" : pg.status === "available"
      ? "pg_stat_statements: " + (pg.statements || []).length + " statements"
      : "pg_stat_statements: not available (" + (pg.reason || "") + ")";
  }

  async function refreshPerformance() {
    const doc = await api("performance");
    const byName = renderWindows(doc.metrics || {});
    const thresholds = doc.thresholds || {};
    renderCharts(byName, thresholds);
    renderHistory(byName);
    renderAlerts(doc);
    renderDepths(doc.queues || {}, thresholds);
    renderDatabase(doc.database || {});
    state.perfLoaded = true;
    state.polls = (state.polls || 0) + 1;
    document.body.dataset.perfLoaded = "1";
    document.body.dataset.polls = String(state.polls);
    document.body.dataset.generatedAt = doc.generated_at || "";
  }

  // ----- queues -------------------------------------------------------------------------------

  function failureList(q) {
    const box = el("td", { class: "text", "data-field": "recent_failures" });
    if (q.recent_failures_error) box.appendChild(el("div", { class: "bad" }, "unavailable: " + q.recent_failures_error));
    const fails = q.recent_failures || [];
    if (!fails.length && !q.recent_failures_error) box.appendChild(el("span", { class: "muted" }, "none"));
    if (fails.length) {
      const ul = el("ul", { class: "failures" });
      for (const f of fails.slice(0, 5)) {
        const li = el("li", { "data-testid": "failure-" + f.job_id });
        li.appendChild(el("b", {}, f.status + " "));
        li.appendChild(el("span", { class: "muted" }, f.job_type + " · attempt " + f.attempts + "/" + f.max_attempts + " · " + fmtTime(f.failed_at) + " — "));
        li.appendChild(el("span", {}, f.error || "(no error text)"));
        ul.appendChild(li);
      }
      if (fails.length > 5) ul.appendChild(el("li", { class: "muted" }, "… " + (fails.length - 5) + " more"));
      box.appendChild(ul);
    }
    return box;
  }

  function renderQueues(report) {
    const body = $("queues-body");
    body.textContent = "";
    let unreadable = 0;
    for (const q of report.queues || []) {
      const tr = el("tr", { "data-testid": "queue-row-" + q.queue, "data-queue": q.queue });
      tr.appendChild(el("td", { "data-field": "queue" }, q.queue));
      const src = q.source || {}, dlq = q.dlq || {};
      if (q.error) unreadable++;
      const num = (field, v) => tr.appendChild(el("td", { "data-field": field }, q.error ? "–" : fmtInt(v)));
      num("visible", src.visible);
      num("in_flight", src.in_flight);
      num("delayed", src.delayed);
      const dlqCell = el("td", { "data-field": "dlq_depth", class: q.dlq_depth ? "bad" : "" }, q.error ? "–" : fmtInt(q.dlq_depth));
      tr.appendChild(dlqCell);
      tr.appendChild(el("td", { "data-field": "oldest_age" }, fmtAge(dlq.oldest_age_secs)));
      tr.appendChild(el("td", { "data-field": "max_attempts" }, q.retry ? q.retry.max_attempts : "–"));
      const failures = failureList(q);
      if (q.error) failures.insertBefore(el("div", { class: "bad" }, "unreadable: " + q.error), failures.firstChild);
      tr.appendChild(failures);
      const act = el("td");
      const btn = el("button", { type: "button", "data-testid": "redrive-" + q.queue, "data-queue": q.queue }, "Redrive");
      btn.disabled = !!q.error || !q.dlq_depth;
      btn.title = btn.disabled ? "nothing to redrive" : "move the DLQ messages back to " + q.queue;
      btn.addEventListener("click", () => redrive(q.queue, btn));
      act.appendChild(btn);
      tr.appendChild(act);
      body.appendChild(tr);
    }
    $("queues-error").textContent = unreadable ? unreadable + " queue(s) could not be read" : "";
    state.queuesLoaded = true;
    document.body.dataset.queuesLoaded = "1";
  }

  async function refreshQueues() {
    try {
      renderQueues(await api("queues"));
    } catch (e) {
      $("queues-error").textContent = "Queues unavailable: " + e.message;
      throw e;
    }
  }

  async function redrive(queue, btn) {
    if (!window.confirm("Move the dead-letter messages of " + queue + " back to the queue?")) return;
    btn.disabled = true;
    const out = $("redrive-result");
    out.textContent = "Redriving " + queue + "…";
    try {
      const r = await api("queues/" + encodeURIComponent(queue) + "/redrive", {
        method: "POST",
        headers: {
          "Authorization": "Bearer " + (sessionStorage.getItem(TOKEN_KEY) || ""),
          "Content-Type": "application/json",
          "Accept": "application/json",
        },
        body: JSON.stringify({}),
      });
      out.textContent = "Redrive of " + r.queue + ": " + r.moved + " moved, " + r.failed + " failed.";
    } catch (e) {
      out.textContent = "Redrive of " + queue + " failed: " + e.message;
    }
    refreshQueues().catch(() => {});
  }

  // ----- loop ---------------------------------------------------------------------------------

  async function tick() {
    clearTimeout(state.timer);
    if (!sessionStorage.getItem(TOKEN_KEY)) {
      setStatus("Paste an admin token (or open the page with ?token=…).", true);
      document.body.dataset.state = "no-token";
      return;
    }
    const results = await Promise.allSettled([refreshPerformance(), refreshQueues()]);
    const errors = results.filter(r => r.status === "rejected").map(r => r.reason && r.reason.message);
    if (errors.length) {
      setStatus("Updated " + new Date().toLocaleTimeString() + " with errors: " + errors.join(" · "), true);
      document.body.dataset.state = errors.length === results.length ? "error" : "partial";
    } else {
      setStatus("Live · updated " + new Date().toLocaleTimeString() + " · every " + intervalMs / 1000 + " s", false);
      document.body.dataset.state = "live";
    }
    state.timer = setTimeout(tick, intervalMs);
  }

  function init() {
    const token = readToken();
    $("token-input").value = token;
    $("token-form").addEventListener("submit", ev => {
      ev.preventDefault();
      const t = $("token-input").value.trim();
      if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
      tick();
    });
    tick();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
