/* triagebot console: the canned reply picker. Typing "/" then words in the reply box lists
 * the canned replies (already rendered for this conversation) whose title or text contains
 * every word; Enter or a click puts the chosen text in the box and remembers its id, which
 * the form posts so the use is counted. Text goes in with textContent / value only. */
(function () {
  "use strict";

  var MAX_SHOWN = 8;

  function start() {
    var box = document.getElementById("reply-text");
    var data = document.getElementById("canned-data");
    var picker = document.getElementById("canned-picker");
    var chosenId = document.getElementById("canned-reply-id");
    if (!box || !data || !picker || !chosenId) return;
    var replies = Array.prototype.map.call(data.children, function (li) {
      return { id: li.dataset.id, title: li.dataset.title, text: li.dataset.text };
    });
    var shown = [];
    var active = 0;

    function close() {
      picker.hidden = true;
      picker.textContent = "";
      shown = [];
    }

    function choose(reply) {
      box.value = reply.text;
      chosenId.value = reply.id;
      close();
      box.focus();
    }

    function render() {
      picker.textContent = "";
      shown.forEach(function (reply, index) {
        var li = document.createElement("li");
        li.className = "canned-picker__item" + (index === active ? " canned-picker__item--active" : "");
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", index === active ? "true" : "false");
        li.dataset.id = reply.id;
        var title = document.createElement("strong");
        title.textContent = reply.title;
        var text = document.createElement("span");
        text.className = "canned-picker__text";
        text.textContent = reply.text;
        li.appendChild(title);
        li.appendChild(text);
        li.addEventListener("mousedown", function (event) {
          event.preventDefault();
          choose(reply);
        });
        picker.appendChild(li);
      });
      picker.hidden = shown.length === 0;
    }

    function filter() {
      var value = box.value;
      if (!value) chosenId.value = "";
      if (value.charAt(0) !== "/") { close(); return; }
      var words = value.slice(1).toLowerCase().split(/\s+/).filter(Boolean);
      shown = replies.filter(function (reply) {
        var hay = (reply.title + " " + reply.text).toLowerCase();
        return words.every(function (w) { return hay.indexOf(w) !== -1; });
      }).slice(0, MAX_SHOWN);
      active = 0;
      render();
    }

    box.addEventListener("input", filter);
    box.addEventListener("keydown", function (event) {
      if (picker.hidden || !shown.length) return;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        active = (active + (event.key === "ArrowDown" ? 1 : shown.length - 1)) % shown.length;
        render();
      } else if (event.key === "Enter" && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        choose(shown[active]);
      } else if (event.key === "Escape") {
        close();
      }
    });
    box.addEventListener("blur", function () { setTimeout(close, 150); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
