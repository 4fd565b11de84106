// Entry point of the smartlabs browser bundle: htmx, configured for our strict CSP.
import htmx from "htmx.org";

// Our CSP forbids inline styles, so htmx must not inject its <style> block;
// app.css ships the .htmx-indicator rules instead.
htmx.config.includeIndicatorStyles = false;

// No eval and no script tags from swapped content: script-src 'self' would block
// them anyway, and turning them off removes a script-injection path entirely.
htmx.config.allowEval = false;
htmx.config.allowScriptTags = false;

// htmx may only talk to our own origin; fragments are never fetched cross-site.
htmx.config.selfRequestsOnly = true;

// Patient data must never be written to browser storage, so the history cache stays off.
htmx.config.historyCacheSize = 0;
htmx.config.refreshOnHistoryMiss = true;

// htmx records the page's path and query in sessionStorage when it loads. On the
// /launch and /callback error pages that query holds launch tokens and codes, and the
// history feature is unused, so the record is removed at once.
try {
  sessionStorage.removeItem("htmx-current-path-for-history");
} catch {
  // Storage may be blocked in a cross-site frame; then nothing was written either.
}

// Error fragments (4xx/5xx) are swapped in like any other answer, so the user
// sees a plain-words message instead of a button that silently does nothing.
htmx.config.responseHandling = [
  { code: "204", swap: false },
  { code: "[23]..", swap: true },
  { code: "[45]..", swap: true, error: true },
  { code: "...", swap: false },
];

// Submits a form marked data-autosubmit (the form-POST authorization request) once
// the page has loaded; without script the user presses its button instead. A script
// file does this because our CSP forbids inline handlers.
function autosubmit() {
  const form = document.querySelector("form[data-autosubmit]");
  if (form instanceof HTMLFormElement && !form.dataset.submitted) {
    form.dataset.submitted = "true";
    form.submit();
  }
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", autosubmit);
} else {
  autosubmit();
}

// Arrow keys move between the analytes of the summary (each a link), so a
// keyboard user can walk the list without tabbing through every cell.
document.addEventListener("keydown", (e) => {
  if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
  const t = e.target;
  if (!(t instanceof HTMLElement) || !t.matches("a[data-nav='analyte']")) return;
  const links = Array.from(document.querySelectorAll("a[data-nav='analyte']"));
  const next = links[links.indexOf(t) + (e.key === "ArrowDown" ? 1 : -1)];
  if (next) {
    e.preventDefault();
    next.focus();
  }
});

// After a view is swapped in (a drill-down, or back to the summary), focus
// moves to its heading, so keyboard and screen-reader users land on the new view.
document.addEventListener("htmx:afterSettle", (e) => {
  // An outerHTML swap reports the replaced element, so the new view is looked up by id.
  const target = e.detail && e.detail.target;
  if (!(target instanceof HTMLElement) || target.id !== "labs") return;
  const el = document.querySelector("#labs [data-autofocus]");
  if (el instanceof HTMLElement) el.focus();
});

// A poll of #labs-live (the updates of a list still loading) that fails,
// the connection broken or an answer that is not ours, leaves the view as
// it is and shows the element's alert: the list is incomplete, Retry.
function liveBroken(e) {
  const el = e.detail && e.detail.elt;
  if (!(el instanceof HTMLElement) || el.id !== "labs-live") return false;
  const alert = el.querySelector("[data-testid='live-broken']");
  if (alert) alert.hidden = false;
  return true;
}

document.addEventListener("htmx:sendError", liveBroken);
document.addEventListener("htmx:beforeSwap", (e) => {
  const xhr = e.detail && e.detail.xhr;
  // Our own errors retarget to #labs and replace the view; anything else
  // (a proxy's error page) must not take the polling element's place.
  if (xhr && xhr.status >= 400 && !xhr.getResponseHeader("HX-Retarget") && liveBroken(e)) {
    e.detail.shouldSwap = false;
  }
});
