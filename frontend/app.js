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
