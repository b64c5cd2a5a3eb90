// Gatehouse console: the few things that need a script. Everything else is plain HTML.
"use strict";

// Live tail on the logs page: new lines arrive over Server-Sent Events, with the page's filter.
function startTail(toggle) {
  const list = document.getElementById("log-lines");
  const status = document.getElementById("tail-status");
  let source = null;
  const stop = () => { if (source) { source.close(); source = null; } status.textContent = "Live tail off"; toggle.textContent = "Start live tail"; toggle.setAttribute("aria-pressed", "false"); };
  const start = () => {
    const q = toggle.dataset.query || "";
    source = new EventSource("/logs/tail" + (q ? "?q=" + encodeURIComponent(q) : ""));
    status.textContent = "Live tail on: new lines appear at the top";
    toggle.textContent = "Stop live tail";
    toggle.setAttribute("aria-pressed", "true");
    // The server names its events `log` (as the JSON API's tail does); onmessage would see none.
    source.addEventListener("log", (event) => {
      let line;
      try { line = JSON.parse(event.data); } catch (e) { return; }
      list.prepend(renderLine(line));
      const empty = document.getElementById("log-empty");
      if (empty) empty.remove();
    });
    source.onopen = () => { status.textContent = "Live tail on: new lines appear at the top"; };
    // The browser retries by itself (resuming after the last line it saw) unless the server refused the stream.
    source.onerror = () => {
      if (source && source.readyState === EventSource.CLOSED) { stop(); status.textContent = "Live tail stopped: reload the page (the session may have ended)"; }
      else status.textContent = "Live tail reconnecting…";
    };
  };
  toggle.addEventListener("click", () => (source ? stop() : start()));
}

// One log line, built with textContent only: nothing from the line is read as HTML.
function renderLine(line) {
  const row = document.createElement("details");
  row.className = "row tailed";
  const summary = document.createElement("summary");
  summary.className = "log-line";
  const time = document.createElement("span");
  time.className = "mono";
  time.textContent = (line.timestamp || "").replace("T", " ").slice(0, 23);
  const level = document.createElement("span");
  level.className = "level-" + String(line.level || "").toLowerCase();
  level.textContent = line.level || "";
  const message = document.createElement("span");
  message.className = "wrap";
  if (line.service) {
    const service = document.createElement("span");
    service.className = "pill";
    service.textContent = line.service;
    message.append(service, " ");
  }
  message.append(line.message || "");
  summary.append(time, level, message);
  const attrs = document.createElement("div");
  attrs.className = "log-attrs";
  if (line.correlation_id) {
    const link = document.createElement("a");
    link.href = "/correlation/" + encodeURIComponent(line.correlation_id);
    link.textContent = "Everything with correlation id " + line.correlation_id;
    attrs.append(link);
  }
  const pre = document.createElement("pre");
  pre.textContent = JSON.stringify(line, null, 2);
  attrs.append(pre);
  row.append(summary, attrs);
  return row;
}

document.addEventListener("DOMContentLoaded", () => {
  const toggle = document.getElementById("tail-toggle");
  if (toggle) startTail(toggle);
});
