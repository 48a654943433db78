// Property analytics dashboard. Reads the worker's JSON API every few seconds and draws
// everything itself (SVG), with no third-party code. Numbers shown are the API's numbers:
// each carries them in data-* attributes too, which the browser test compares with the API.
(() => {
  "use strict";

  const REFRESH_MS = 5000;
  const TOP_N = 10;
  const INSIGHTS_N = 20;
  const SEGMENT_TOP_N = 3;
  const LAG_SCALE = 100;
  const HOUR_MS = 3600 * 1000;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const fmt = new Intl.NumberFormat("en-US");
  const fmt1 = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

  const $ = (id) => document.getElementById(id);
  // "/?hour=2026-11-20T14:00:00Z" shows that hour instead of the current one.
  const pinnedHour = new URLSearchParams(location.search).get("hour");
  let token = null;
  let refreshes = 0;
  let requests = 0; // API requests of the refresh under way (data-requests: the last one's)
  let lastOk = 0;
  const seenInsights = new Set();
  let firstInsights = true;

  // --- token: #token=... in the address, or typed in, kept for this tab only --------------
  (function readToken() {
    const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (match) {
      token = decodeURIComponent(match[1]);
      sessionStorage.setItem("apiToken", token);
      history.replaceState(null, "", location.pathname + location.search);
    } else {
      token = sessionStorage.getItem("apiToken");
    }
  })();

  if (pinnedHour) {
    $("views-title").textContent = "Views in the hour";
    $("trending-title").textContent = "Trending in the hour";
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token-input").value.trim() || null;
    if (token) sessionStorage.setItem("apiToken", token);
    $("token-form").hidden = true;
    refresh();
  });

  class HttpError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path) {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    const response = await fetch(path, { headers, cache: "no-store" });
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    if (!response.ok) {
      throw new HttpError(response.status, (body && body.error) || response.statusText);
    }
    return body;
  }

  // --- small DOM and SVG helpers (textContent only: ids are data, never markup) -----------
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (v !== undefined && v !== null) el.setAttribute(k, String(v));
    }
    for (const child of children) if (child) el.append(child);
    return el;
  }

  function s(tag, attrs) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    return el;
  }

  function setNumber(el, value, digits) {
    el.dataset.value = value === null || value === undefined ? "" : String(value);
    el.textContent = value === null || value === undefined ? "–" : (digits ? fmt1 : fmt).format(value);
  }

  const utc = (iso) => new Date(iso);
  // A worker's address as given when it is not a URL: one odd peer never stops a refresh.
  const hostOf = (url) => { try { return new URL(url).host; } catch (_) { return String(url); } };
  const hhmm = (d) => d.toISOString().slice(11, 16);
  const dayLabel = (d) =>
    d.toLocaleDateString("en-GB", { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" });

  function ago(iso) {
    const seconds = Math.max(0, Math.round((Date.now() - utc(iso).getTime()) / 1000));
    if (seconds < 60) return seconds + " s ago";
    if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.round(seconds / 3600) + " h ago";
    return Math.round(seconds / 86400) + " d ago";
  }

  // --- charts ------------------------------------------------------------------------------
  function areaPath(values, width, height, pad) {
    const max = Math.max(1, ...values);
    const step = values.length > 1 ? width / (values.length - 1) : 0;
    const points = values.map((v, i) => [i * step, pad + (height - 2 * pad) * (1 - v / max)]);
    const line = points.map(([x, y], i) => (i ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1)).join(" ");
    const area = line + ` L${width} ${height} L0 ${height} Z`;
    return { line, area, points };
  }

  function sparkline(windows) {
    const values = windows.map((w) => w.views);
    const width = 150, height = 30;
    const svg = s("svg", { class: "sparkline", viewBox: `0 0 ${width} ${height}`, "data-values": values.join(",") });
    const total = values.reduce((a, b) => a + b, 0);
    const peak = Math.max(0, ...values);
    const peakAt = windows[values.indexOf(peak)];
    const title = s("title");
    title.textContent = `last 24 h: ${fmt.format(total)} views, peak ${fmt.format(peak)}` +
      (peakAt && peak ? ` at ${hhmm(utc(peakAt.windowStart))} UTC` : "");
    svg.append(title);
    svg.append(s("line", { class: "base", x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5 }));
    if (values.length) {
      const { line, area, points } = areaPath(values, width, height, 3);
      svg.append(s("path", { class: "area", d: area }));
      svg.append(s("path", { class: "line", d: line }));
      const [x, y] = points[points.length - 1];
      svg.append(s("circle", { class: "now", cx: x, cy: y, r: 2.6 }));
    }
    return svg;
  }

  function drawThroughput(series) {
    const svg = $("throughput-chart");
    svg.replaceChildren();
    const values = series.slice(-60);
    const peak = Math.max(0, ...values);
    $("throughput-peak").textContent = values.length > 1 ? `last ${values.length} s · peak ${fmt.format(Math.round(peak))}/s` : "";
    if (values.length < 2) return;
    const { line, area } = areaPath(values, 240, 44, 2);
    svg.append(s("path", { class: "area", d: area }), s("path", { class: "line", d: line }));
  }

  function drawLag(partitions) {
    const svg = $("lag-chart");
    svg.replaceChildren();
    const worst = partitions.reduce((a, p) => (p.lag > a.lag ? p : a), { lag: 0, partition: null });
    $("lag-detail").textContent = partitions.length
      ? `${partitions.length} partitions` + (worst.lag ? ` · max ${fmt.format(worst.lag)} on ${worst.partition}` : "")
      : "";
    if (!partitions.length) return;
    // Scaled to at least LAG_SCALE records, so that a record or two in flight stays a sliver.
    const max = Math.max(LAG_SCALE, ...partitions.map((p) => p.lag));
    const gap = 3;
    const width = (240 - gap * (partitions.length - 1)) / partitions.length;
    partitions.forEach((p, i) => {
      const height = Math.max(2, 42 * (p.lag / max));
      const bar = s("rect", {
        class: p.lag > 1000 ? "bar hot" : "bar", x: i * (width + gap), y: 44 - height,
        width: Math.max(1, width), height, rx: 1.5, "data-partition": p.partition, "data-lag": p.lag,
      });
      const title = s("title");
      title.textContent = `partition ${p.partition}: ${fmt.format(p.lag)} records behind`;
      bar.append(title);
      svg.append(bar);
    });
  }

  // --- sections ----------------------------------------------------------------------------
  function renderSummary(d) {
    const start = utc(d.hour.windowStart), end = utc(d.hour.windowEnd);
    $("window-label").replaceChildren(
      "Hour ", h("strong", { text: `${dayLabel(start)} · ${hhmm(start)}–${hhmm(end)} UTC` }),
      pinnedHour ? h("a", { class: "pinned", href: location.pathname, text: "back to the current hour" }) : "",
    );
    setNumber($("kpi-throughput"), d.throughput.eventsPerSecond === null ? null : Math.round(d.throughput.eventsPerSecond));
    drawThroughput(d.throughput.series || []);
    setNumber($("kpi-hour-views"), d.hourViews);
    $("kpi-hour-properties").textContent = fmt.format(d.hourProperties);
    const elapsed = Math.min(1, Math.max(0, (utc(d.generatedAt).getTime() - start.getTime()) / HOUR_MS));
    const minutes = Math.max(1, Math.round(elapsed * 60));
    $("hour-progress").style.width = (100 * elapsed).toFixed(1) + "%";
    $("kpi-hour-pace").textContent = elapsed < 1
      ? `${minutes} min into the hour · ${fmt.format(Math.round(d.hourViews / minutes))} views/min`
      : "hour complete";
    const behind = d.behind ? d.behind.total : null;
    $("kpi-hour-behind").textContent = behind == null ? ""
      : behind === 0 ? "up to date with the stream"
      : `${fmt.format(behind)} record${behind === 1 ? "" : "s"} of the stream not counted yet`;
    setNumber($("kpi-lag"), d.lag.total);
    $("kpi-lag-unit").textContent = d.lag.total === 1 ? "record" : "records";
    drawLag(d.lag.partitions);
    const t = d.totals || {};
    setNumber($("tally-accepted"), t.accepted ?? 0);
    setNumber($("tally-duplicate"), t.duplicate ?? 0);
    setNumber($("tally-rejected"), t.rejected ?? 0);
    setNumber($("tally-insights"), t.insights ?? 0);
    $("tally-rejected").classList.toggle("nonzero", (t.rejected ?? 0) > 0);
    const reasons = Object.entries(d.rejectedByReason || {}).map(([r, n]) => `${r}: ${fmt.format(n)}`);
    $("tally-rejected").title = reasons.length ? reasons.join("\n") : "nothing rejected";

    const missing = d.partitions.missing;
    $("coverage").replaceChildren(
      `Partitions ${d.partitions.covered.length}/${d.partitions.total} answered`,
      missing.length ? h("span", { class: "missing", text: ` · missing ${missing.join(", ")} (owner not answering): figures are partial` }) : "",
    );
    $("workers").replaceChildren(
      `${d.workers.length} worker${d.workers.length === 1 ? "" : "s"}: `,
      ...d.workers.map((w) => h("span", {
        class: "worker" + (w.error || !w.ready ? " down" : ""),
        title: w.error || (w.ready ? "ready" : "recovering"),
        text: `${hostOf(w.url)} [${w.partitions.join(",")}]` +
          (w.standbys && w.standbys.partitions.length
            ? ` standby [${w.standbys.partitions.join(",")}] lag ${w.standbys.lag}` : ""),
      })),
    );
  }

  function renderTrending(d, histories) {
    const table = $("trending");
    table.dataset.hour = d.hour.windowStart;
    const rows = d.topProperties;
    const max = Math.max(1, ...rows.map((r) => r.views));
    const body = table.tBodies[0];
    body.replaceChildren(...rows.map((row, i) => {
      const views = h("td", { class: "num views" });
      setNumber(views, row.views);
      const users = h("td", { class: "num users" });
      setNumber(users, row.uniqueUsers);
      const history = histories[row.propertyId];
      const name = h("button", { type: "button", class: "open-property", title: `open ${row.propertyId}`,
        text: row.title || row.propertyId });
      name.addEventListener("click", () => openProperty(row.propertyId));
      return h("tr", { "data-property-id": row.propertyId, "data-title": row.title, "data-status": row.status,
        "data-behind": row.behind ?? "" },
        h("td", { class: "rank", text: i + 1 }),
        h("td", { class: "property" },
          name,
          row.status ? h("span", { class: `status-tag ${row.status === "rented" ? "rented" : "listed"}`, text: row.status }) : null,
          row.title ? h("span", { class: "pid", text: row.propertyId }) : null,
          row.behind ? h("span", { class: "behind", title: "records of its partition not counted yet",
            text: `${fmt.format(row.behind)} behind` }) : null,
          h("span", { class: "bar", style: `width:${(100 * row.views / max).toFixed(1)}%` })),
        views, users,
        h("td", { class: "spark" }, history ? sparkline(history) : h("span", { class: "hint", text: "–" })),
      );
    }));
    $("trending-empty").hidden = rows.length > 0;
  }

  function insightText(i) {
    const m = i.metrics || {};
    if (i.type === "property_hourly_spike") {
      return {
        badge: "spike",
        subject: (i.property && i.property.title) ? `${i.property.title} · ${i.subject.propertyId}` : i.subject.propertyId,
        detail: `${fmt.format(m.views)} views · ${fmt.format(m.uniqueUsers)} users · ` +
          (m.ratio == null ? "none in the 24 h before" : `${fmt1.format(m.ratio)}× 24 h mean ${fmt1.format(m.baseline)}`) +
          ` · ${hhmm(utc(i.windowStart))}–${hhmm(utc(i.windowEnd))}`,
      };
    }
    if (i.type === "rented_property_demand") {
      return {
        badge: "rented",
        subject: (i.property && i.property.title) ? `${i.property.title} · ${i.subject.propertyId}` : i.subject.propertyId,
        detail: `${fmt.format(m.views)} views · ${fmt.format(m.uniqueUsers)} users while rented · ` +
          `${hhmm(utc(i.windowStart))}–${hhmm(utc(i.windowEnd))}`,
      };
    }
    return {
      badge: "trend",
      subject: `${i.subject.propertyId} · ${String(i.subject.segment).replace(/_/g, " ")}`,
      detail: `${fmt.format(m.views)} views this week · ` +
        (m.ratio == null ? "none last week" : `${fmt.format(m.previousViews)} last week (${fmt1.format(m.ratio)}×)`),
    };
  }

  function insightItem(i) {
    const t = insightText(i);
    const fresh = !firstInsights && !seenInsights.has(i.insightId);
    seenInsights.add(i.insightId);
    return h("li", { class: `insight ${i.type}${fresh ? " fresh" : ""}`, "data-insight-id": i.insightId },
      h("span", { class: "badge", text: t.badge }),
      h("span", { class: "subject", text: t.subject, title: i.insightId }),
      h("span", { class: "when", text: ago(i.detectedAt), title: i.detectedAt }),
      h("span", { class: "detail", text: t.detail }),
    );
  }

  function renderInsights(insights) {
    const list = $("insights");
    // An insight the page cannot draw is left out (counted in data-skipped), never the list.
    let skipped = 0;
    const items = [];
    for (const i of insights) {
      try { items.push(insightItem(i)); } catch (_) { skipped += 1; }
    }
    list.replaceChildren(...items);
    list.dataset.skipped = String(skipped);
    firstInsights = false;
    $("insights-empty").hidden = items.length > 0;
    $("insights-count").textContent = items.length ? `newest ${items.length}` : "";
  }

  function renderSegments(week, segments) {
    const start = utc(week.windowStart);
    const shown = week.segmentCount > segments.length ? ` · top ${segments.length} of ${fmt.format(week.segmentCount)} segments` : "";
    const late = week.behind ? ` · ${fmt.format(week.behind)} record${week.behind === 1 ? "" : "s"} of the stream not in these yet` : "";
    $("week-label").textContent = `week of ${dayLabel(start)} (ISO week, UTC)${shown}${late}`;
    const box = $("segments");
    box.dataset.week = week.windowStart;
    segments.sort((a, b) => b.views - a.views || a.segment.localeCompare(b.segment));
    box.replaceChildren(...segments.map((seg) => {
      const views = h("strong", { class: "seg-views" });
      setNumber(views, seg.views);
      const users = h("strong", { class: "seg-users" });
      setNumber(users, seg.uniqueUsers);
      const top = seg.topProperties.slice(0, SEGMENT_TOP_N);
      const max = Math.max(1, ...top.map((p) => p.views));
      return h("div", { class: "segment", "data-segment": seg.segment },
        h("h3", { text: seg.segment.replace(/_/g, " ") }),
        h("div", { class: "figures" },
          h("div", {}, views, h("span", { text: "views" })),
          h("div", {}, users, h("span", { text: "unique users" }))),
        h("ol", {}, ...top.map((p) => h("li", { "data-property-id": p.propertyId, "data-views": p.views },
          h("span", { text: p.propertyId }),
          h("span", { class: "pv", text: fmt.format(p.views) }),
          h("span", { class: "meter", style: `width:${(100 * p.views / max).toFixed(1)}%` })))),
      );
    }));
    $("segments-empty").hidden = segments.length > 0;
  }

  // --- the property page: aggregate, history, hourly views of the last 48 h ---------------
  async function openProperty(id) {
    const panel = $("property-page");
    const enc = encodeURIComponent(id);
    panel.hidden = false;
    panel.dataset.propertyId = id;
    $("property-title").textContent = id;
    $("property-facts").replaceChildren(h("p", { class: "hint", text: "Loading…" }));
    $("property-history").replaceChildren();
    $("property-hours").replaceChildren();
    const now = Date.now();
    const to = new Date(now - now % HOUR_MS + HOUR_MS).toISOString();
    const from = new Date(now - now % HOUR_MS - 47 * HOUR_MS).toISOString();
    const [state, events, hours] = await Promise.all([
      api(`/api/properties/${enc}`).catch((e) => ({ error: e.message, status: e.status })),
      api(`/api/properties/${enc}/events?limit=100`).catch(() => ({ events: [] })),
      api(`/api/properties/${enc}/views/history?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`)
        .catch(() => ({ windows: [] })),
    ]);
    if (panel.dataset.propertyId !== id) return; // another one was opened meanwhile
    if (state.error) {
      $("property-facts").replaceChildren(h("p", { class: "hint",
        text: state.status === 404 ? "No property events for this property." : `Could not load: ${state.error}` }));
    } else {
      const data = state.data || {};
      $("property-title").textContent = data.title ? `${data.title} · ${id}` : id;
      const fact = (label, value) => h("div", {}, h("dt", { text: label }), h("dd", { text: value == null ? "–" : String(value) }));
      $("property-facts").replaceChildren(h("dl", { class: "facts", "data-status": state.status, "data-version": state.version },
        fact("status", state.status), fact("city", data.city), fact("price", data.price),
        fact("bedrooms", data.bedrooms), fact("version", state.version),
        fact("created", state.createdAt), fact("updated", state.updatedAt)));
    }
    $("property-history").replaceChildren(...events.events.map((e) =>
      h("li", { "data-version": e.version },
        h("span", { class: "ver", text: `v${e.version}` }),
        h("span", { class: "etype", text: e.eventType.replace("property.", "") }),
        h("span", { class: "when", text: e.timestamp }),
        h("span", { class: "detail", text: JSON.stringify(e.data) }))));
    const windows = hours.windows || [];
    const box = $("property-hours");
    box.dataset.total = String(windows.reduce((a, w) => a + w.views, 0));
    box.replaceChildren(windows.length ? sparkline(windows) : h("span", { class: "hint", text: "–" }),
      h("p", { class: "hint", text: `${fmt.format(Number(box.dataset.total))} views in the last 48 h` }));
  }

  $("property-close").addEventListener("click", () => { $("property-page").hidden = true; });

  // --- one refresh -------------------------------------------------------------------------
  function setStatus(kind, text) {
    $("status").className = "status " + kind;
    $("status-text").textContent = text;
  }

  function showBanner(text) {
    $("banner").hidden = !text;
    $("banner").textContent = text || "";
  }

  // A request of the refresh, counted (the property page's requests are not).
  const refreshApi = (path) => { requests += 1; return api(path); };

  async function refresh() {
    requests = 0;
    try {
      const hourParam = pinnedHour ? `&hour=${encodeURIComponent(pinnedHour)}` : "";
      const d = await refreshApi(`/api/dashboard?limit=${TOP_N}${hourParam}`);
      const hourStart = utc(d.hour.windowStart).getTime();
      const from = new Date(hourStart - 23 * HOUR_MS).toISOString();
      const to = new Date(hourStart + HOUR_MS).toISOString();
      const historyOf = (id) =>
        refreshApi(`/api/properties/${encodeURIComponent(id)}/views/history?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`)
          .then((r) => [id, r.windows], () => [id, null]);
      // The week's most viewed segments come whole with the summary: no request per segment.
      const [histories, insights] = await Promise.all([
        Promise.all(d.topProperties.map((p) => historyOf(p.propertyId))).then(Object.fromEntries),
        refreshApi(`/api/insights?limit=${INSIGHTS_N}`),
      ]);
      renderSummary(d);
      renderTrending(d, histories);
      renderInsights(insights.insights);
      renderSegments(d.week, d.week.segments.slice());
      refreshes += 1;
      lastOk = Date.now();
      document.body.dataset.state = "ready";
      document.body.dataset.refreshes = String(refreshes);
      document.body.dataset.requests = String(requests);
      const partial = d.partitions.missing.length > 0;
      const at = new Date(lastOk).toISOString().slice(11, 19);
      setStatus(partial ? "stale" : "live", `${partial ? "live · partial" : "live"} · updated ${at} UTC`);
      showBanner(partial ? `Partitions ${d.partitions.missing.join(", ")} have no answering owner right now: hourly figures leave them out.` : "");
    } catch (err) {
      if (err instanceof HttpError && err.status === 401) {
        $("token-form").hidden = false;
        $("window-label").textContent = "Enter the API token to see the figures";
        setStatus("down", "token needed");
        showBanner(token ? "The API token was refused." : "");
        document.body.dataset.state = "unauthorized";
        return; // wait for the form
      }
      setStatus(lastOk ? "stale" : "down", lastOk ? `stale since ${new Date(lastOk).toISOString().slice(11, 19)} UTC` : "unreachable");
      showBanner(`Could not refresh: ${err.message}`);
      if (!lastOk) document.body.dataset.state = "error";
    }
    setTimeout(refresh, REFRESH_MS);
  }

  setInterval(() => {
    if (lastOk) {
      const seconds = Math.round((Date.now() - lastOk) / 1000);
      if (seconds > 3 * REFRESH_MS / 1000) setStatus("stale", `no update for ${seconds} s`);
    }
  }, 1000);

  // "/?property=<id>" opens that property's page at once.
  const pinnedProperty = new URLSearchParams(location.search).get("property");
  if (pinnedProperty) openProperty(pinnedProperty);

  refresh();
})();
