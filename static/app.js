// Progressive enhancement only: every page works without this file.
// Polling (hx-trigger="every Ns" on [data-poll]) pauses while an actions menu or a dialog is
// open, or while the operator types in a field inside the polled region, so a refresh never
// closes or clears it under their hands. A closed menu whose button keeps the focus does not
// pause it: htmx puts the focus back on the element with the same id after the swap.
document.addEventListener("htmx:beforeRequest", function (event) {
  var source = event.detail.elt;
  if (!source || !source.hasAttribute("data-poll")) return;
  if (document.querySelector("details.row-menu[open], dialog[open]") ||
      (document.activeElement && source.contains(document.activeElement) &&
       document.activeElement.matches("input, select, textarea"))) {
    event.preventDefault();
  }
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
