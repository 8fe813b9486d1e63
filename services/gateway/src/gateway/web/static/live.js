// The card's Live view refreshes itself (docs/console.md "Charts and the Live view"): every
// data-interval-ms while the tab is visible and "Refresh automatically" is ticked. A refresh
// swaps only #live-view, which holds no controls, and waits while keyboard focus or a cell
// selection is inside it, so it never moves focus or drops what the operator picked.
(function () {
  "use strict";
  var KEY = "pb-live-auto";
  var busy = false, last = 0, seen = null;

  function say(text) {
    var out = document.getElementById("live-state");
    if (out) out.textContent = text;
  }

  function clock() {
    return new Date().toISOString().slice(11, 19) + " UTC";
  }

  function setup(view) {
    var box = document.getElementById("live-auto");
    var controls = document.getElementById("live-auto-label");
    if (!box || box.dataset.ready) return;
    box.dataset.ready = "1";
    box.checked = sessionStorage.getItem(KEY) !== "off";
    if (controls) controls.hidden = false;
    say(box.checked ? "Refreshes every " + Math.round(interval(view) / 1000) + " s" : "Stopped");
    box.addEventListener("change", function () {
      sessionStorage.setItem(KEY, box.checked ? "on" : "off");
      say(box.checked ? "Refreshing again" : "Stopped");
      last = 0;
    });
  }

  function interval(view) {
    return parseInt(view.dataset.intervalMs || "5000", 10) || 5000;
  }

  function refresh(view) {
    busy = true;
    last = Date.now();
    fetch(view.dataset.liveUrl, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (reply) {
        if (reply.redirected || !reply.ok) throw new Error(reply.redirected ? "signed out" : String(reply.status));
        return reply.text();
      })
      .then(function (html) {
        if (document.getElementById("live-view") !== view) return;  // the page changed meanwhile
        var box = document.getElementById("live-auto");
        if (box && !box.checked) return;  // stopped while this one was on its way
        if (view.contains(document.activeElement)) return;  // focus went in meanwhile: next time
        view.innerHTML = html;
        var now = view.querySelector("#live-channels"), head = document.getElementById("card-channels");
        if (now && head) head.textContent = head.textContent.replace(/^\s*\S+/, now.textContent.trim());
        say("Updated " + clock());
      })
      .catch(function (err) { say("Refresh failed (" + err.message + "), trying again"); })
      .then(function () { busy = false; });
  }

  function tick() {
    var view = document.getElementById("live-view");
    if (!view) { seen = null; return; }
    if (view !== seen) { seen = view; last = Date.now(); setup(view); }  // a new page: start counting
    var box = document.getElementById("live-auto");
    if (!box || !box.checked || busy) return;
    if (document.visibilityState === "hidden") { say("Paused while the tab is hidden"); return; }
    if (Date.now() - last < interval(view)) return;
    if (view.contains(document.activeElement) || view.querySelector(".picked")) return;
    refresh(view);
  }

  setInterval(tick, 1000);
  document.addEventListener("visibilitychange", tick);
})();
