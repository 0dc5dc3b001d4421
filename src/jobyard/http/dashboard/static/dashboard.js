// jobyard dashboard: live statuses and output over /ui/live, and the job control buttons.
// Plain script, no build step; the pages work without it (less the live parts).
"use strict";

(function () {
  const MAX_LOG_CHARS = 2 * 1024 * 1024; // what a log panel keeps; the rest is a download
  const RETRY_MS = [500, 1000, 2000, 5000];
  const MAX_RETRIES = 30; // then the page says so (signed out, or the server is gone)

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function announce(text) {
    const region = document.getElementById("announce");
    if (region) region.textContent = text;
  }

  // getAttribute/setAttribute: SVG elements have no string className.
  function swapStatusClass(el, status) {
    const rest = (el.getAttribute("class") || "").replace(/\bstatus-[A-Z_]+\b/g, "").trim();
    el.setAttribute("class", (rest + " status-" + status).trim());
  }

  function setStatus(scope, status) {
    scope.querySelectorAll('[data-field="status"]').forEach(function (el) {
      el.textContent = status;
      swapStatusClass(el, status);
    });
    if (scope.classList.contains("node")) swapStatusClass(scope, status);
  }

  function setField(scope, name, value) {
    scope.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) {
      el.textContent = value === null || value === undefined ? "" : String(value);
    });
  }

  function formatBytes(count) {
    const units = ["B", "KiB", "MiB", "GiB"];
    let value = count;
    for (let i = 0; i < units.length; i++) {
      if (value < 1024 || i === units.length - 1) {
        return i === 0 ? value + " B" : value.toFixed(1) + " " + units[i];
      }
      value /= 1024;
    }
    return count + " B";
  }

  // One subscription over one socket, reopened after a drop until the server says "end".
  function subscribe(subscription, onMessage, onOpen) {
    let attempt = 0;
    let ended = false;
    function open() {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const socket = new WebSocket(scheme + "//" + location.host + "/ui/live");
      socket.addEventListener("open", function () {
        attempt = 0;
        if (onOpen) onOpen();
        socket.send(JSON.stringify(subscription));
      });
      socket.addEventListener("message", function (event) {
        const message = JSON.parse(event.data);
        if (message.type === "end") ended = true;
        onMessage(message);
      });
      socket.addEventListener("close", function () {
        if (ended) return;
        if (attempt >= MAX_RETRIES) {
          announce("Live updates stopped: reload the page (or sign in again).");
          return;
        }
        const delay = RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)];
        attempt += 1;
        window.setTimeout(open, delay);
      });
    }
    open();
  }

  function jobsTable(table) {
    const rows = {};
    table.querySelectorAll("tr[data-job-id]").forEach(function (row) {
      rows[row.getAttribute("data-job-id")] = row;
    });
    const ids = Object.keys(rows);
    const announceNew = table.getAttribute("data-new") === "1";
    if (ids.length === 0 && !announceNew) return;
    const fresh = {};
    subscribe({ watch: "jobs", ids: ids, new: announceNew }, function (message) {
      if (message.type === "new") {
        fresh[message.job.id] = true;
        const count = Object.keys(fresh).length;
        const link = document.querySelector("[data-new-jobs]");
        link.textContent = count + " new job" + (count === 1 ? "" : "s") + ": show";
        link.hidden = false;
        return;
      }
      if (message.type !== "job") return;
      const row = rows[message.job.id];
      if (!row) return;
      setStatus(row, message.job.status);
      setField(row, "started", message.job.started);
      setField(row, "ended", message.job.ended);
    });
  }

  function jobPage(root) {
    const jobId = root.getAttribute("data-job-id");
    subscribe({ watch: "job", id: jobId }, function (message) {
      if (message.type === "job") {
        showJob(root, message);
      } else if (message.type === "output" || message.type === "skipped") {
        appendOutput(root, message);
      } else if (message.type === "error") {
        announce(message.why);
        const result = document.getElementById("action-result");
        if (result) result.textContent = message.why;
      }
    }, function () {
      // Each (re)connection replays the history: start the panels afresh.
      root.querySelectorAll("pre.log").forEach(function (pre) { pre.textContent = ""; });
    });
    root.querySelectorAll("button[data-action]").forEach(function (button) {
      button.addEventListener("click", function () { act(root, jobId, button); });
    });
  }

  function showJob(root, message) {
    const job = message.job;
    const before = root.querySelector('.summary [data-field="status"]').textContent;
    setStatus(root, job.status);
    setField(root, "message", job.message);
    setField(root, "started", job.started);
    setField(root, "ended", job.ended);
    setField(root, "exit_code", job.exit_code);
    if (message.usage) {
      setField(root, "cpu_seconds", message.usage.cpu_seconds.toFixed(2) + " s");
      setField(root, "memory_peak", formatBytes(message.usage.memory_peak_bytes));
      setField(root, "output_size", formatBytes(message.usage.output_bytes));
    }
    root.querySelectorAll("button[data-action]").forEach(function (button) {
      button.hidden = job.actions.indexOf(button.getAttribute("data-action")) < 0;
    });
    root.querySelectorAll("[data-action-for]").forEach(function (el) {
      el.hidden = job.actions.indexOf(el.getAttribute("data-action-for")) < 0;
    });
    if (before !== job.status) announce("Job " + job.short + " is " + job.status);
  }

  function appendOutput(root, message) {
    const pre = root.querySelector('pre.log[data-rank="' + message.rank + '"]');
    if (!pre) return;
    const text = message.type === "skipped"
      ? "[" + formatBytes(message.bytes) + " of earlier output: download it]\n"
      : message.text;
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    let content = pre.textContent + text;
    if (content.length > MAX_LOG_CHARS) content = content.slice(content.length - MAX_LOG_CHARS);
    pre.textContent = content;
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }

  function act(root, jobId, button) {
    const action = button.getAttribute("data-action");
    const short = jobId.slice(0, 8);
    let body = "{}";
    let question = action.charAt(0).toUpperCase() + action.slice(1) + " job " + short + "?";
    if (action === "extend") {
      const minutes = Number(document.getElementById("extend-minutes").value);
      body = JSON.stringify({ minutes: minutes });
      question = "Extend job " + short + " by " + minutes + " minutes?";
    }
    if (!window.confirm(question)) return;
    const result = document.getElementById("action-result");
    button.disabled = true;
    fetch("/ui/jobs/" + encodeURIComponent(jobId) + "/" + action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: body,
    }).then(function (response) {
      return response.json();
    }).then(function (answer) {
      result.textContent = answer.ok ? action + ": done" : action + " refused: " + answer.why;
      if (answer.ok) showJob(root, { job: answer.job, usage: null });
    }).catch(function () {
      result.textContent = action + " failed: the server did not answer";
    }).finally(function () {
      button.disabled = false;
    });
  }

  function workflowPage(root) {
    const id = root.getAttribute("data-workflow-id");
    subscribe({ watch: "workflow", id: id }, function (message) {
      if (message.type !== "job") return;
      const job = message.job;
      root.querySelectorAll("[data-job-id], [data-name]").forEach(function (el) {
        const byId = el.getAttribute("data-job-id") === job.id;
        const byName = !el.hasAttribute("data-job-id") && el.getAttribute("data-name") === job.name;
        if (byId || byName) setStatus(el, job.status);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll('[data-live="jobs"]').forEach(jobsTable);
    document.querySelectorAll('[data-live="job"]').forEach(jobPage);
    document.querySelectorAll('[data-live="workflow"]').forEach(workflowPage);
  });
})();
