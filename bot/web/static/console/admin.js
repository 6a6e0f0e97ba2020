/* The admin page's model card: while a retrain runs, fetch the card again every second and
   swap it in place, so progress and the result show without a reload. */
(function () {
  "use strict";

  function watch() {
    var card = document.getElementById("model");
    if (!card || card.dataset.training !== "1") { return; }
    window.setTimeout(function () {
      fetch(card.dataset.endpoint, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) {
          if (r.status === 401 || r.status === 403) { location.reload(); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          if (html) {
            var box = document.createElement("div");
            box.innerHTML = html;
            var fresh = box.querySelector("#model");
            if (fresh) { card.replaceWith(fresh); }
          }
        })
        .catch(function () { /* offline for a moment: try again */ })
        .then(watch);
    }, 1000);
  }

  document.addEventListener("DOMContentLoaded", watch);
})();
