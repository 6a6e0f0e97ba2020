/* triagebot console: collision detection on a conversation page.
 * Every 5 s (and soon after the first keystroke) it tells the server this agent is here and
 * whether they are typing a reply, and shows who else is: "Sam is viewing", "Sam is typing…".
 * Names are put in the page with textContent only. */
(function () {
  "use strict";

  var EVERY_MS = 5000;
  var TYPING_MS = 6000;

  function start(box) {
    var endpoint = box.dataset.endpoint;
    var csrf = box.dataset.csrf;
    var reply = document.getElementById("reply-text");
    var lastKey = 0;
    var busy = false;
    var soon = null;

    function typing() { return Date.now() - lastKey < TYPING_MS; }

    function show(viewers) {
      var fresh = document.createDocumentFragment();
      viewers.forEach(function (v) {
        var who = document.createElement("span");
        who.className = "presence__who" + (v.typing ? " presence__who--typing" : "");
        who.textContent = v.name + (v.typing ? " is typing…" : " is viewing");
        fresh.appendChild(who);
      });
      box.replaceChildren(fresh);
    }

    function report() {
      if (busy) return;
      busy = true;
      var body = new FormData();
      body.append("csrf_token", csrf);
      body.append("typing", typing() ? "1" : "");
      fetch(endpoint, { method: "POST", body: body, credentials: "same-origin",
                        headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) show(data.viewers); })
        .catch(function () { /* the next round tries again */ })
        .then(function () { busy = false; });
    }

    if (reply) {
      reply.addEventListener("input", function () {
        var was = typing();
        lastKey = Date.now();
        if (!was && soon === null) {  // others see "typing" within a second, not five
          soon = setTimeout(function () { soon = null; report(); }, 300);
        }
      });
    }
    report();
    setInterval(function () { if (!document.hidden) report(); }, EVERY_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("presence");
    if (box) start(box);
  });
})();
