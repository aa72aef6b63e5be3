// The labelling page: keyboard shortcuts, what the reviewer opened and how far they
// read, whether they saw the AI's rationale and recommendation, and the lease countdown. Loaded from our own origin (the CSP allows no inline
// script); the server decides everything that matters, this only measures and helps.
(function () {
  "use strict";

  var TRACKED = { call: "tool_calls_expanded", output: "outputs_expanded", more: "outputs_expanded", rationale: "rationale_opened" };
  // Treatment uptake (docs/reviewer.md, "What is recorded"): the AI's rationale or
  // recommendation counts as seen once it has been in view for SEEN_MS in all, "in view"
  // meaning at least half of it on screen (or, for a long one, half the screen filled by it)
  // while the tab is in front; a rationale behind "Why?" counts as seen when opened.
  var SEEN_MS = 1000;
  var IN_VIEW_SHARE = 0.5;
  var state = null;
  var leaseTimer = null;
  var currentWork = null;
  var uptakeObserver = null;

  function now() { return Math.round(performance.now()); }

  // Time in view of each [data-uptake] element: a running total plus the moment the
  // current stretch began (null when out of view).
  function uptakeUpdate(watch) {
    var visible = watch.inView && !document.hidden && (!watch.collapsed || watch.el.open);
    if (visible && watch.since === null) { watch.since = now(); }
    else if (!visible && watch.since !== null) { watch.ms += now() - watch.since; watch.since = null; }
  }

  function watchUptake(work) {
    if (uptakeObserver) { uptakeObserver.disconnect(); uptakeObserver = null; }
    var watched = [];
    // Without IntersectionObserver nothing is sent, and the label's uptake is "unknown".
    if (!("IntersectionObserver" in window)) { return watched; }
    work.querySelectorAll("[data-uptake]").forEach(function (el) {
      var watch = { name: el.dataset.uptake, el: el, ms: 0, since: null, inView: false, opened: false,
        collapsed: el.hasAttribute("data-uptake-opened") };
      if (watch.collapsed) {
        el.addEventListener("toggle", function () {
          if (el.open) { watch.opened = true; }
          uptakeUpdate(watch);
        });
      }
      watched.push(watch);
    });
    if (!watched.length) { return watched; }
    var steps = [];
    for (var i = 0; i <= 20; i++) { steps.push(i / 20); }
    uptakeObserver = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        var watch = watched.find(function (w) { return w.el === entry.target; });
        if (!watch) { return; }
        var shown = entry.intersectionRect.height;
        var screen = entry.rootBounds ? entry.rootBounds.height : window.innerHeight;
        watch.inView = entry.isIntersecting && shown > 0 &&
          (shown >= IN_VIEW_SHARE * entry.boundingClientRect.height || shown >= IN_VIEW_SHARE * screen);
        uptakeUpdate(watch);
      });
    }, { threshold: steps });
    watched.forEach(function (watch) { uptakeObserver.observe(watch.el); });
    return watched;
  }

  function uptakeMeasurements(watched) {
    var out = {};
    watched.forEach(function (watch) {
      // Capped at a day, the server's bound for a measurement (a tab left open overnight).
      var ms = Math.min(watch.ms + (watch.since !== null ? now() - watch.since : 0), 86400000);
      out[watch.name + "_visible_ms"] = ms;
      out[watch.name + "_seen"] = (watch.collapsed ? watch.opened : ms >= SEEN_MS) ? 1 : 0;
    });
    return out;
  }

  document.addEventListener("visibilitychange", function () {
    if (state) { state.uptake.forEach(uptakeUpdate); }
  });

  function init() {
    var work = document.getElementById("work");
    currentWork = work;
    clearInterval(leaseTimer);
    if (!work || !work.querySelector("#answer-form")) {
      if (uptakeObserver) { uptakeObserver.disconnect(); uptakeObserver = null; }
      state = null;
      return;
    }
    // The same item shown again (a refused answer, with the problem beside its field): the
    // measurements go on from where they were, so what the reviewer already did still counts.
    var item = work.querySelector("#answer-form").getAttribute("action");
    var previous = state && state.item === item ? state : null;
    var before = previous ? previous.uptake : [];
    state = {
      item: item,
      start: previous ? previous.start : now(),
      firstAnswer: previous ? previous.firstAnswer : null,
      aiShown: previous && previous.aiShown !== null ? previous.aiShown : (work.querySelector("#ai-panel") ? now() : null),
      counts: previous ? previous.counts : { tool_calls_expanded: 0, outputs_expanded: 0, rationale_opened: 0, keys_used: 0 },
      scroll: previous ? previous.scroll : 0,
      uptake: watchUptake(work)
    };
    state.uptake.forEach(function (watch) {
      var old = before.find(function (w) { return w.name === watch.name; });
      if (old) {
        watch.ms = old.ms + (old.since !== null ? now() - old.since : 0);
        watch.opened = old.opened;
      }
    });
    work.querySelectorAll("details[data-track]").forEach(function (details) {
      details.addEventListener("toggle", function () {
        if (details.open && state) { state.counts[TRACKED[details.dataset.track]] += 1; }
      });
    });
    var transcript = document.getElementById("transcript");
    if (transcript) {
      var measure = function () {
        if (!state) { return; }
        var depth = transcript.scrollHeight > 0 ? (transcript.scrollTop + transcript.clientHeight) / transcript.scrollHeight : 1;
        state.scroll = Math.max(state.scroll, Math.min(1, depth));
      };
      transcript.addEventListener("scroll", measure, { passive: true });
      measure();
    }
    work.querySelector("#answer-form").addEventListener("change", function () {
      if (state && state.firstAnswer === null) { state.firstAnswer = now(); }
    });
    startLeaseTimer(work.querySelector(".lease[data-expires]"));
  }

  function startLeaseTimer(lease) {
    if (!lease) { return; }
    var expires = Date.parse(lease.dataset.expires);
    var label = lease.querySelector(".countdown");
    var tick = function () {
      var left = Math.round((expires - Date.now()) / 1000);
      if (left <= 0) {
        lease.classList.add("is-late");
        label.textContent = ": your time on this item is up, and another reviewer may take it";
        clearInterval(leaseTimer);
        return;
      }
      var minutes = Math.floor(left / 60);
      var seconds = String(left % 60).padStart(2, "0");
      label.textContent = " (" + minutes + ":" + seconds + " left)";
    };
    tick();
    leaseTimer = setInterval(tick, 1000);
  }

  // Fill in the measurements just before any answer form is sent (capture phase: before htmx reads the form).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "answer-form" || !state) { return; }
    var t = now();
    var timings = { ms_on_page: t - state.start };
    if (state.firstAnswer !== null) { timings.ms_to_first_answer = state.firstAnswer - state.start; }
    if (state.aiShown !== null) { timings.ms_after_ai_shown = t - state.aiShown; }
    var interactions = Object.assign({}, state.counts, { scroll_depth: Math.round(state.scroll * 1000) / 1000 },
      uptakeMeasurements(state.uptake));
    form.querySelector("input[name=interactions]").value = JSON.stringify(interactions);
    form.querySelector("input[name=client_timings]").value = JSON.stringify(timings);
  }, true);

  function toggle(id) {
    var details = document.getElementById(id);
    if (details) { details.open = !details.open; }
    return details;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) { return; }
    var target = event.target;
    var typing = target.matches && target.matches("textarea, select, input[type=text], input[type=number]");
    if (event.key === "Escape") {
      var skip = toggle("skip");
      if (skip && skip.open) { var first = skip.querySelector("input[type=radio]"); if (first) { first.focus(); } }
      else if (typing) { target.blur(); }
      event.preventDefault();
      return;
    }
    if (typing) { return; }
    var form = document.getElementById("answer-form");
    if (event.key === "Enter") {
      // Enter keeps its own meaning on links, buttons and disclosure toggles.
      if (target.matches && target.matches("summary, button, a")) { return; }
      var skipForm = target.closest && target.closest("#skip");
      if (skipForm) { return; }  // Enter on a skip reason submits the skip form natively.
      if (form) { event.preventDefault(); form.requestSubmit(); }
      return;
    }
    if (event.key === "?") { toggle("shortcuts"); event.preventDefault(); return; }
    if (event.key === "[" || event.key === "]") {
      var open = event.key === "[";
      document.querySelectorAll("#transcript details").forEach(function (d) { d.open = open; });
      event.preventDefault();
      return;
    }
    if (!form || event.key.length !== 1) { return; }
    var input = form.querySelector('input[data-key="' + CSS.escape(event.key.toLowerCase()) + '"]');
    if (input) {
      input.checked = true;
      input.dispatchEvent(new Event("change", { bubbles: true }));
      if (state) { state.counts.keys_used += 1; }
      event.preventDefault();
    }
  });

  // A 5xx or a lost connection swaps nothing (htmx-config), so the answer stays in the
  // form; say so, since resending it is safe (a submit counts once).
  function sendProblem(text) {
    var box = document.getElementById("send-problem");
    if (!box) { return; }
    box.textContent = text;
    box.hidden = !text;
  }
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    sendProblem("The server could not take that request (HTTP " + status + "). Your answer is still in the form: " +
      "wait a moment and press Enter to send it again; it will be counted once.");
  });
  document.addEventListener("htmx:sendError", function () {
    sendProblem("The connection to the server was lost. Your answer is still in the form: " +
      "press Enter to send it again when you are back online; it will be counted once.");
  });
  document.addEventListener("htmx:afterSwap", function () { sendProblem(""); });

  document.addEventListener("DOMContentLoaded", init);
  // A new item was swapped in (outerHTML replaces #work): start measuring afresh.
  document.addEventListener("htmx:afterSettle", function () {
    if (document.getElementById("work") !== currentWork) { init(); }
  });
})();
