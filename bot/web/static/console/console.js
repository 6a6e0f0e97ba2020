/* triagebot console: live queue and live transcript by polling JSON every 3 s.
 * Data is only ever put in the page with textContent (never innerHTML), so whatever a
 * customer wrote stays text. */
(function () {
  "use strict";

  var POLL_MS = 3000;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function toLogin() {
    var here = location.pathname + location.search;
    location.assign("/console/login?next=" + encodeURIComponent(here));
  }

  function poll(url, onData) {
    var busy = false;
    function tick() {
      if (busy || document.hidden) return;
      busy = true;
      fetch(url(), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          if (r.status === 401) { toLogin(); return null; }
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.json();
        })
        .then(function (data) { if (data) { onData(data); setStale(false); } })
        .catch(function () { setStale(true); })
        .then(function () { busy = false; });
    }
    setInterval(tick, POLL_MS);
  }

  function setStale(stale) {
    var live = document.getElementById("queue-live") || document.getElementById("handoff-live");
    if (live) live.classList.toggle("live--stale", stale);
  }

  /* ------------------------------------------------------------------ queue */
  function badges(cell, reasons) {
    reasons.forEach(function (r) {
      cell.appendChild(el("span", "badge badge--" + r.code, r.label));
    });
  }

  function queueRow(r) {
    var tr = el("tr", "qrow qrow--p" + r.priority + (r.mine ? " qrow--mine" : ""));
    tr.dataset.id = r.id;
    var prio = el("td");
    var p = el("span", "prio prio--" + r.priority, r.priority_label);
    p.title = "priority " + r.priority;
    prio.appendChild(p);
    tr.appendChild(prio);

    var who = el("td");
    var link = el("a", "who", r.customer);
    link.href = "/console/handoffs/" + encodeURIComponent(r.id);
    who.appendChild(link);
    who.appendChild(el("div", "sub", (r.account || "no account") + (r.tier ? " · " + r.tier : "")));
    tr.appendChild(who);

    var why = el("td", "badges");
    badges(why, r.reasons);
    tr.appendChild(why);

    var msg = el("td");
    msg.appendChild(el("div", "preview", r.last_text));
    if (r.intent) msg.appendChild(el("div", "sub", r.intent));
    tr.appendChild(msg);

    tr.appendChild(el("td", "", r.channel));
    tr.appendChild(el("td", "num", r.waiting));
    tr.appendChild(el("td", "sla sla--" + r.sla.state, r.sla.text));

    var owner = el("td");
    if (r.assignee) {
      owner.appendChild(el("span", "owner" + (r.mine ? " owner--me" : ""), r.assignee));
      if (r.assignment_reason) owner.appendChild(el("div", "sub assignment-reason", r.assignment_reason));
    }
    else owner.appendChild(el("span", "status status--" + r.status, r.status_label));
    tr.appendChild(owner);
    return tr;
  }

  function startQueue(body) {
    var endpoint = body.dataset.endpoint;
    poll(function () { return endpoint + location.search; }, function (data) {
      var fresh = document.createDocumentFragment();
      if (data.rows.length === 0) {
        var empty = el("tr", "qrow qrow--empty");
        var td = el("td", "", "No handoffs match. New escalations appear here by themselves.");
        td.colSpan = 8;
        empty.appendChild(td);
        fresh.appendChild(empty);
      }
      data.rows.forEach(function (r) { fresh.appendChild(queueRow(r)); });
      body.replaceChildren(fresh);
      document.querySelectorAll("[data-count]").forEach(function (n) {
        n.textContent = String(data.counts[n.dataset.count]);
      });
      var updated = document.getElementById("queue-updated");
      if (updated) updated.textContent = data.updated;
    });
  }

  /* ------------------------------------------------------------- transcript */
  function line(m) {
    var li = el("li", "line line--" + m.kind);
    li.dataset.id = m.id;
    var head = el("div", "line__head");
    head.appendChild(el("span", "line__who", m.who));
    var time = el("time", "", m.at_label);
    time.setAttribute("datetime", m.at);
    head.appendChild(time);
    if (m.intent) {
      head.appendChild(el("span", "line__intent", m.intent + (m.confidence ? " · " + m.confidence : "") + (m.term ? " · names “" + m.term + "”" : "")));
    }
    li.appendChild(head);
    li.appendChild(el("div", "line__text", m.text));
    if (m.failed) markFailed(li, m.failed);
    return li;
  }

  function markFailed(li, reason) {
    if (li.querySelector(".line__failed")) return;
    var note = el("div", "line__failed", "Not delivered: " + reason);
    note.setAttribute("role", "alert");
    li.appendChild(note);
  }

  function nearBottom(node) {
    return node.scrollHeight - node.scrollTop - node.clientHeight < 80;
  }

  function startHandoff(box) {
    var list = document.getElementById("transcript");
    var after = Number(box.dataset.after || 0);
    var version = Number(box.dataset.version);
    list.scrollTop = list.scrollHeight;
    poll(function () { return box.dataset.endpoint + "?after=" + after; }, function (data) {
      var stick = nearBottom(list);
      data.messages.forEach(function (m) {
        if (m.id > after) { list.appendChild(line(m)); after = m.id; }
      });
      if (data.messages.length && stick) list.scrollTop = list.scrollHeight;
      Object.keys(data.failed || {}).forEach(function (id) {
        var li = list.querySelector("li[data-id='" + id + "']");
        if (li) markFailed(li, data.failed[id]);
      });
      var status = document.getElementById("handoff-status");
      if (status) {
        status.textContent = data.handoff.status_label + (data.handoff.assignee ? " · " + data.handoff.assignee : "");
        status.className = "status status--" + data.handoff.status;
      }
      var why = document.getElementById("assignment-reason");
      if (why) why.textContent = data.handoff.assignment_reason || "";
      if (data.handoff.version !== version) {
        document.getElementById("handoff-changed").hidden = false;
      }
    });
    var reply = document.getElementById("reply-text");
    if (reply) {
      reply.addEventListener("keydown", function (e) {
        if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
          e.preventDefault();
          reply.form.requestSubmit();
        }
      });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var body = document.getElementById("queue-rows");
    if (body) startQueue(body);
    var box = document.getElementById("handoff");
    if (box) startHandoff(box);
  });
})();
