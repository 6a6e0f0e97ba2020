/* triagebot web chat widget. Vanilla JS, no build step.
 *
 * Safety: every piece of message text is inserted with textContent / text nodes, never
 * innerHTML, so markup in a message is shown as typed and never runs. Links are made only
 * from http(s) URLs, as <a> elements whose href and text are set as properties.
 *
 * Delivery: each message gets a client_id once; a failed POST (network error, 5xx, 429) is
 * retried with the same client_id, so the server stores it once however often it arrives.
 * A 429 (too many messages) shows the server's friendly message and waits its Retry-After.
 * History comes from GET /chat/api/messages; live replies from the SSE stream, which resumes
 * from the last event id after a reconnect. Both paths are deduplicated by message id.
 */
(function () {
  "use strict";

  var API = "/chat/api/messages";
  var STREAM = "/chat/api/stream";
  var MAX_TEXT = 10000;
  var REPLY_WAIT_MS = 20000;

  var log = document.getElementById("chat-log");
  var form = document.getElementById("chat-form");
  var input = document.getElementById("chat-input");
  var sendButton = document.getElementById("chat-send");
  var typing = document.getElementById("chat-typing");
  var errorBox = document.getElementById("chat-error");
  var statusLine = document.getElementById("chat-status");

  var state = {
    lastId: 0,
    seen: new Set(),
    pending: new Map(), // client_id -> <li> not yet confirmed by the server
    typingTimer: null,
    source: null,
    streamFailures: 0,
    live: false, // true once the history is shown: later messages are news
  };

  // -- helpers ----------------------------------------------------------------------------

  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) { return b.toString(16).padStart(2, "0"); })
      .join("");
  }

  function sleep(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  var URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/g;

  function appendText(element, text) {
    var last = 0;
    var match;
    URL_PATTERN.lastIndex = 0;
    while ((match = URL_PATTERN.exec(text)) !== null) {
      var url = match[0].replace(/[.,;:!?)\]]+$/, "");
      if (match.index > last) {
        element.appendChild(document.createTextNode(text.slice(last, match.index)));
      }
      var link = document.createElement("a");
      link.href = url;
      link.textContent = url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      element.appendChild(link);
      last = match.index + url.length;
      URL_PATTERN.lastIndex = last;
    }
    if (last < text.length) {
      element.appendChild(document.createTextNode(text.slice(last)));
    }
  }

  function whoLabel(message) {
    if (message.author === "customer") return "You";
    if (message.author === "agent") {
      return message.author_name ? message.author_name + " · Support team" : "Support team";
    }
    return "Assistant";
  }

  function timeLabel(iso) {
    var date = iso ? new Date(iso) : new Date();
    if (isNaN(date.getTime())) return "";
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function nearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 120;
  }

  function scrollDown(force) {
    if (force || nearBottom()) log.scrollTop = log.scrollHeight;
  }

  // Show a newly added message: the whole of it, or its top when it is taller than the log.
  // Whether to follow is decided *before* it was added (a tall message would otherwise look
  // like the reader had scrolled away).
  function reveal(item, follow) {
    if (!follow) return;
    if (item.offsetHeight > log.clientHeight) {
      log.scrollTop = item.offsetTop - log.offsetTop;
    } else {
      log.scrollTop = log.scrollHeight;
    }
  }

  // The header says who has the chat: the bot, the queue, or a person (the page renders the
  // state at load; live messages move it on).
  function setChatState(name) {
    var text = statusLine.dataset[name];
    if (text) statusLine.textContent = text;
  }

  function showError(text) {
    errorBox.textContent = text || "";
    errorBox.hidden = !text;
  }

  function setTyping(on) {
    clearTimeout(state.typingTimer);
    typing.hidden = !on;
    if (on) {
      state.typingTimer = setTimeout(function () { typing.hidden = true; }, REPLY_WAIT_MS);
      scrollDown(false);
    }
  }

  // -- rendering --------------------------------------------------------------------------

  function bubble(author, who, text, iso) {
    var item = document.createElement("li");
    item.className = "msg msg--" + (author === "customer" || author === "agent" ? author : "bot");
    var whoLine = document.createElement("div");
    whoLine.className = "msg__who";
    whoLine.textContent = who;
    var body = document.createElement("div");
    body.className = "msg__text";
    appendText(body, text);
    var meta = document.createElement("div");
    meta.className = "msg__meta";
    var time = document.createElement("time");
    if (iso) time.dateTime = iso;
    time.textContent = timeLabel(iso);
    meta.appendChild(time);
    item.appendChild(whoLine);
    item.appendChild(body);
    item.appendChild(meta);
    return item;
  }

  function setStatus(item, text, retry) {
    var meta = item.querySelector(".msg__meta");
    var old = meta.querySelector(".msg__state");
    if (old) old.remove();
    if (!text) return;
    var span = document.createElement("span");
    span.className = "msg__state";
    span.textContent = text;
    if (retry) {
      span.appendChild(document.createTextNode(" "));
      var button = document.createElement("button");
      button.type = "button";
      button.className = "msg__retry";
      button.textContent = "Retry";
      button.addEventListener("click", retry);
      span.appendChild(button);
    }
    meta.appendChild(span);
  }

  function clearChips() {
    log.querySelectorAll(".chips").forEach(function (group) { group.remove(); });
  }

  function addChips(item, buttons) {
    var group = document.createElement("div");
    group.className = "chips";
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "Quick replies");
    buttons.forEach(function (choice) {
      var chip = document.createElement("button");
      chip.type = "button";
      chip.className = "chip";
      chip.textContent = choice.text;
      chip.addEventListener("click", function () {
        group.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
        chip.setAttribute("aria-pressed", "true");
        send({ text: choice.text, callback_data: choice.data });
      });
      group.appendChild(chip);
    });
    item.appendChild(group);
  }

  function placeInOrder(item, id) {
    var children = log.children;
    for (var i = 0; i < children.length; i++) {
      var other = children[i];
      var otherId = Number(other.dataset.id || 0);
      if (other.classList.contains("msg--pending") || other.classList.contains("msg--failed") ||
          otherId > id) {
        log.insertBefore(item, other);
        return;
      }
    }
    log.appendChild(item);
  }

  function render(message) {
    if (state.seen.has(message.id)) return;
    state.seen.add(message.id);
    state.lastId = Math.max(state.lastId, message.id);
    var item = message.client_id ? state.pending.get(message.client_id) : null;
    if (item) {
      state.pending.delete(message.client_id);
      item.classList.remove("msg--pending", "msg--failed");
      setStatus(item, "");
      item.dataset.id = String(message.id);
      return;
    }
    item = bubble(message.author, whoLabel(message), message.text, message.created_at);
    item.dataset.id = String(message.id);
    if (message.author !== "customer") {
      clearChips();
      setTyping(false);
      if (message.buttons && message.buttons.length) addChips(item, message.buttons);
    }
    if (state.live && message.author === "agent") setChatState("withPerson");
    if (state.live && message.author === "system") setChatState("bot"); // resolved: CSAT
    var follow = message.author === "customer" || nearBottom();
    placeInOrder(item, message.id);
    reveal(item, follow);
  }

  // -- talking to the server --------------------------------------------------------------

  function syncHistory(after) {
    var url = API + "?after=" + encodeURIComponent(String(after || 0));
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("history " + response.status);
        return response.json();
      })
      .then(function (body) { body.messages.forEach(render); })
      .catch(function () { /* the stream or the next sync fills the gap */ });
  }

  function describeError(body, status) {
    var detail = body && body.detail;
    if (Array.isArray(detail)) {
      return detail.map(function (d) { return typeof d === "string" ? d : d.msg; }).join("; ");
    }
    if (typeof detail === "string") return detail;
    return "The message was refused (" + status + ").";
  }

  async function send(payload, existing) {
    payload.client_id = payload.client_id || newClientId();
    var item = existing;
    if (!item) {
      item = bubble("customer", "You", payload.text || payload.callback_data, null);
      item.classList.add("msg--pending");
      log.appendChild(item);
      state.pending.set(payload.client_id, item);
      scrollDown(true);
    }
    item.classList.remove("msg--failed");
    item.classList.add("msg--pending");
    setStatus(item, "Sending…");
    showError("");
    setTyping(true);
    var delay = 1000;
    for (var attempt = 0; attempt < 6; attempt++) {
      var response = null;
      try {
        response = await fetch(API, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify(payload),
        });
      } catch (networkError) {
        response = null; // offline or connection reset: retry with the same client_id
      }
      if (response && response.ok) {
        showError("");
        var result = await response.json().catch(function () { return {}; });
        delivered(item, payload, result);
        return;
      }
      if (response && response.status < 500 && response.status !== 408 &&
          response.status !== 429) {
        var body = await response.json().catch(function () { return null; });
        refused(item, payload, describeError(body, response.status));
        return;
      }
      if (response && response.status === 429) {
        // too many messages: say so kindly, wait as long as the server asks, then retry
        var slow = await response.json().catch(function () { return null; });
        showError(describeError(slow, 429));
        var asked = parseInt(response.headers.get("Retry-After") || "", 10);
        if (asked > 0) delay = Math.max(delay, Math.min(asked, 60) * 1000);
        setStatus(item, "Waiting…");
        await sleep(delay);
        continue;
      }
      setStatus(item, "Retrying…");
      await sleep(delay);
      delay = Math.min(delay * 2, 8000);
    }
    setTyping(false);
    item.classList.remove("msg--pending");
    item.classList.add("msg--failed");
    setStatus(item, "Not sent.", function () { send(payload, item); });
  }

  function delivered(item, payload, result) {
    if (state.pending.has(payload.client_id)) {
      item.classList.remove("msg--pending");
      setStatus(item, "");
    }
    var expectsReply = result.action === "answered" || result.action === "escalated";
    if (!expectsReply) setTyping(false);
    if (result.action === "escalated" ||
        (result.action === "forwarded" && statusLine.textContent === statusLine.dataset.bot)) {
      setChatState("waiting");
    }
    syncHistory(state.lastId); // the reply is committed with the message: show it now
  }

  function refused(item, payload, reason) {
    setTyping(false);
    state.pending.delete(payload.client_id);
    item.classList.remove("msg--pending");
    item.classList.add("msg--failed");
    setStatus(item, "Not sent: " + reason);
    if (payload.text && !input.value) {
      input.value = payload.text;
      updateSendButton();
    }
  }

  function connectStream() {
    if (!window.EventSource) {
      setInterval(function () { syncHistory(state.lastId); }, 4000);
      return;
    }
    var source = new EventSource(STREAM + "?after=" + encodeURIComponent(String(state.lastId)));
    state.source = source;
    source.onmessage = function (event) {
      try {
        render(JSON.parse(event.data));
      } catch (parseError) {
        /* not a message event: ignore */
      }
    };
    source.onopen = function () {
      if (state.streamFailures > 0) syncHistory(0); // heal anything missed while away
      state.streamFailures = 0;
    };
    source.onerror = function () {
      state.streamFailures += 1;
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. an error status): reconnect ourselves, a bit later.
        setTimeout(connectStream, Math.min(30000, 2000 * state.streamFailures));
      }
    };
  }

  // -- the form ---------------------------------------------------------------------------

  function updateSendButton() {
    sendButton.disabled = input.value.trim().length === 0;
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 160) + "px";
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    if (text.length > MAX_TEXT) {
      showError("That message is too long (at most " + MAX_TEXT + " characters).");
      return;
    }
    input.value = "";
    updateSendButton();
    send({ text: text });
  });

  input.addEventListener("input", updateSendButton);
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") syncHistory(state.lastId);
  });

  syncHistory(0).then(function () {
    scrollDown(true);
    state.live = true;
    connectStream();
  });
  input.focus({ preventScroll: true });
})();
