// Progressive enhancement only: every page works without this file.
// Polling (hx-trigger="every Ns" on [data-poll]) pauses while an actions menu or a dialog is
// open, or while the operator types in a field inside the polled region, so a refresh never
// closes or clears it under their hands. A closed menu whose button keeps the focus does not
// pause it: htmx puts the focus back on the element with the same id after the swap.
function pollPaused(source) {
  if (!source || !source.hasAttribute || !source.hasAttribute("data-poll")) return false;
  // A ticked row (a bulk selection under way) pauses it too: a swap would untick it.
  return !!(document.querySelector("details.row-menu[open], dialog[open]") ||
      source.querySelector("input[type=checkbox]:checked") ||
      (document.activeElement && source.contains(document.activeElement) &&
       document.activeElement.matches("input, select, textarea")));
}
document.addEventListener("htmx:beforeRequest", function (event) {
  if (pollPaused(event.detail.elt)) event.preventDefault();
});
// A poll already in flight when the menu opened is not swapped in either: it would close the
// menu the operator just opened (the next poll after it closes brings the rows).
document.addEventListener("htmx:beforeSwap", function (event) {
  if (pollPaused(event.detail.elt)) event.detail.shouldSwap = false;
});

// Only HTML fragments of ours are swapped in. A JSON or text answer is dropped whatever asked
// for it: htmx would otherwise insert it as markup (SECURITY.md, "a hostile Hummingbot").
document.addEventListener("htmx:beforeSwap", function (event) {
  var type = event.detail.xhr.getResponseHeader("Content-Type") || "";
  if (!/^text\/html\s*(;|$)/i.test(type)) {
    event.detail.shouldSwap = false;
  }
});

// Keyboard: Escape closes an open menu (a row's actions, the page's, the phone nav) and puts
// the focus back on its button, as a menu button should.
document.addEventListener("keydown", function (event) {
  if (event.key !== "Escape") return;
  var menu = document.querySelector("details.dropdown[open]");
  if (!menu) return;
  menu.removeAttribute("open");
  var summary = menu.querySelector("summary");
  if (summary) summary.focus();
  event.preventDefault();
});

// After a failed submit the page comes back with an error summary: move the focus there, so
// a keyboard or screen-reader user starts from what went wrong.
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.querySelector("main .flash-error, main .conflict");
  if (!summary) return;
  summary.setAttribute("tabindex", "-1");
  summary.focus();
});

// Times are printed in UTC; the title adds the viewer's local time (after every swap too).
function addLocalTimes(root) {
  root.querySelectorAll("time[data-local][datetime]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when)) return;
    el.title = el.getAttribute("datetime").replace("T", " ").replace("Z", " UTC") +
      "\n" + when.toLocaleString() + " (your time)";
  });
}
document.addEventListener("DOMContentLoaded", function () { addLocalTimes(document); });
document.addEventListener("htmx:afterSwap", function (event) { addLocalTimes(event.detail.target); });
