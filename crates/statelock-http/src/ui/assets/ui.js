// statelock web UI: the little JavaScript the server-rendered pages use. Everything works
// without it; it adds two things:
// - live updates: pages marked data-live listen to /ui/events (server-sent events) and, when
//   the server says something changed, fetch the same URL again and swap in its <main>;
// - relative times ("3 min ago") kept current, with the exact time on hover.
"use strict";

(function () {
  function ago(seconds) {
    if (seconds < 1) return "just now";
    if (seconds < 60) return Math.floor(seconds) + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 86400) {
      var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60);
      return h + " h" + (m ? " " + m + " min" : "") + " ago";
    }
    return Math.floor(seconds / 86400) + " d ago";
  }

  function refreshTimes(root) {
    var now = Date.now();
    root.querySelectorAll("time[data-rel]").forEach(function (t) {
      var at = Date.parse(t.getAttribute("datetime"));
      if (!isNaN(at)) t.textContent = ago(Math.max(0, (now - at) / 1000));
    });
  }

  function status(text) {
    var el = document.getElementById("live-status");
    if (el) el.textContent = text;
  }

  var pending = null;
  var updates = 0;

  function reload() {
    var main = document.getElementById("main");
    // Never pull the page from under someone typing into a form on it.
    if (main.contains(document.activeElement) && /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName)) {
      return;
    }
    fetch(location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.getElementById("main");
        if (!fresh) return;
        main.innerHTML = fresh.innerHTML;
        refreshTimes(main);
        updates += 1;
        document.body.setAttribute("data-updates", String(updates));
        status("live · updated " + new Date().toLocaleTimeString());
      })
      .catch(function (e) { status("live · update failed (" + e.message + "), retrying"); });
  }

  function live() {
    if (!window.EventSource) return;
    var source = new EventSource("/ui/events");
    source.addEventListener("open", function () { status("live"); });
    source.addEventListener("change", function () {
      // Several changes in a burst (lock, write, unlock) cost one reload.
      clearTimeout(pending);
      pending = setTimeout(reload, 150);
    });
    source.addEventListener("error", function () { status("live updates paused, reconnecting…"); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    refreshTimes(document);
    setInterval(function () { refreshTimes(document); }, 15000);
    if (document.body.getAttribute("data-live") === "1") live();
  });
})();
