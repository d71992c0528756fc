// The live console of `mote up`: fills in the host's figures while the
// page is in view (a hidden page asks nothing), and sends the try-it
// form. Every text from the host is set as text, never as markup.
(function () {
  "use strict";
  var body = document.body;
  var root = body.getAttribute("data-root") || "";
  var service = body.getAttribute("data-service");
  var EVERY_MS = 3000;
  var timer = null;

  function text(element, value) { if (element) { element.textContent = value; } }
  function ms(value) {
    if (value === null || value === undefined) { return "–"; }
    return value < 1 ? value.toFixed(3) + " ms" : value < 100 ? value.toFixed(1) + " ms" : Math.round(value) + " ms";
  }
  function percent(value) { return (value * 100).toFixed(value > 0 && value < 0.01 ? 2 : 1) + " %"; }
  function failed(figures) {
    return Object.keys(figures.errors).reduce(function (sum, code) { return sum + figures.errors[code]; }, 0);
  }
  function el(name, attributes, svg) {
    var element = svg ? document.createElementNS("http://www.w3.org/2000/svg", name) : document.createElement(name);
    Object.keys(attributes || {}).forEach(function (key) { element.setAttribute(key, attributes[key]); });
    return element;
  }

  function fillIndex(live) {
    document.querySelectorAll("td[data-live]").forEach(function (cell) {
      var figures = live.services[cell.getAttribute("data-of")];
      if (!figures) { return; }
      var figure = cell.getAttribute("data-live");
      if (figure === "rate") { text(cell, figures.calls_per_second.toFixed(1)); }
      if (figure === "errors") { text(cell, figures.calls ? percent(figures.error_rate) : "–"); }
      if (figure === "p50") { text(cell, ms(figures.p50_ms)); }
      if (figure === "p99") { text(cell, ms(figures.p99_ms)); }
    });
  }

  function chart(box, series) {
    var width = 600, height = 120, n = series.calls.length;
    var top = Math.max(1, Math.max.apply(null, series.calls));
    var svg = el("svg", { viewBox: "0 0 " + width + " " + height, "class": "chart" }, true);
    var bar = width / n;
    series.calls.forEach(function (calls, i) {
      var h = (calls / top) * (height - 14);
      var e = (series.errors[i] / top) * (height - 14);
      svg.appendChild(el("rect", { x: i * bar + 1, y: height - h, width: bar - 2, height: h, "class": "calls" }, true));
      if (e > 0) { svg.appendChild(el("rect", { x: i * bar + 1, y: height - e, width: bar - 2, height: e, "class": "errors" }, true)); }
    });
    var label = el("text", { x: 2, y: 11 }, true);
    label.textContent = top + " calls";
    svg.appendChild(label);
    box.replaceChildren(svg);
  }

  function fillService(live) {
    var figures = live.services[service];
    if (!figures) { return; }
    text(document.querySelector("dd[data-live=rate]"), figures.calls_per_second.toFixed(2));
    text(document.querySelector("dd[data-live=error-rate]"), figures.calls ? percent(figures.error_rate) : "–");
    text(document.querySelector("dd[data-live=p50]"), ms(figures.p50_ms));
    text(document.querySelector("dd[data-live=p99]"), ms(figures.p99_ms));
    var box = document.getElementById("chart");
    if (box) { chart(box, figures.series); }
    var codes = Object.keys(figures.errors).sort();
    text(document.getElementById("errors-by-code"), codes.length === 0 ? "None in the last minute." :
      codes.map(function (code) { return code + ": " + figures.errors[code]; }).join(", ") +
      " (" + failed(figures) + " of " + figures.calls + " calls)");
    var table = document.getElementById("failures");
    var none = document.getElementById("no-failures");
    if (!table) { return; }
    var rows = figures.last_failures.map(function (failure) {
      var row = el("tr");
      [failure.at, failure.code, failure.call_id].forEach(function (value, i) {
        var cell = el("td");
        if (i === 0) { text(cell, value); } else { var code = el("code"); text(code, value); cell.appendChild(code); }
        row.appendChild(cell);
      });
      return row;
    });
    table.tBodies[0].replaceChildren.apply(table.tBodies[0], rows);
    table.hidden = rows.length === 0;
    if (none) { none.hidden = rows.length !== 0; }
  }

  function poll() {
    timer = null;
    if (document.visibilityState !== "visible") { return; }
    fetch(root + "api/live", { cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (live) {
        if (live) { if (service) { fillService(live); } else { fillIndex(live); } }
      })
      .catch(function () {})
      .then(schedule);
  }
  function schedule() {
    if (timer === null && document.visibilityState === "visible") { timer = setTimeout(poll, EVERY_MS); }
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && timer === null) { poll(); }
  });
  poll();

  var form = document.getElementById("try-form");
  if (!form || !service) { return; }

  function value(field) {
    var raw = field.value;
    var kind = field.getAttribute("data-kind");
    if (raw.trim() === "") { return undefined; }
    if (kind === "string") { return raw; }
    if (kind === "integer" || kind === "number") {
      var number = Number(raw.trim());
      return isNaN(number) ? raw : number;
    }
    return JSON.parse(raw);
  }

  function input() {
    var fields = form.querySelectorAll("[data-field]");
    if (form.getAttribute("data-as") !== "object") { return value(fields[0]); }
    var object = {};
    fields.forEach(function (field) {
      var v = value(field);
      if (v !== undefined) { object[field.getAttribute("data-field")] = v; }
    });
    return object;
  }

  function waterfall(box, trace) {
    box.replaceChildren();
    if (!trace || trace.spans.length === 0) { text(box, "No trace: the call did not reach the runtime."); return; }
    var total = Math.max(trace.spans[0].duration_ms, 0.001);
    trace.spans.forEach(function (span) {
      var row = el("div", { "class": "span" + (span.outcome === "ok" ? "" : " failed") });
      var name = el("span", { "class": "span-name" });
      name.style.paddingLeft = (span.depth * 1.2) + "em";
      text(name, (span.step ? span.step + " → " : "") + span.service);
      var lane = el("span", { "class": "span-lane" });
      var bar = el("span", { "class": "span-bar" });
      bar.style.marginLeft = Math.min(100, (span.start_ms / total) * 100) + "%";
      bar.style.width = Math.max(0.5, (span.duration_ms / total) * 100) + "%";
      lane.appendChild(bar);
      var figure = el("span", { "class": "span-time" });
      text(figure, ms(span.duration_ms) + (span.outcome === "ok" ? "" : " · " + span.outcome));
      row.appendChild(name); row.appendChild(lane); row.appendChild(figure);
      box.appendChild(row);
    });
    if (trace.dropped > 0) { box.appendChild(document.createTextNode(trace.dropped + " more calls not shown")); }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var result = document.getElementById("try-result");
    var payload;
    try { payload = JSON.stringify(input()); } catch (e) {
      result.hidden = false;
      text(document.getElementById("try-status"), "not sent");
      text(document.getElementById("try-call-id"), "–");
      text(document.getElementById("try-body"), "A JSON field does not parse: " + e.message);
      document.getElementById("try-trace").replaceChildren();
      return;
    }
    fetch(root + "api/try/" + encodeURIComponent(service), {
      method: "POST", headers: { "content-type": "application/json" }, body: payload
    })
      .then(function (response) { return response.json(); })
      .then(function (answer) {
        result.hidden = false;
        text(document.getElementById("try-status"), String(answer.status));
        text(document.getElementById("try-call-id"), answer.call_id);
        text(document.getElementById("try-body"), JSON.stringify(answer.body, null, 2));
        waterfall(document.getElementById("try-trace"), answer.trace);
        poll();
      })
      .catch(function (e) {
        result.hidden = false;
        text(document.getElementById("try-status"), "no answer");
        text(document.getElementById("try-body"), String(e));
      });
  });
})();
