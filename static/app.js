// Progressive enhancement only: every page works without this file.
// Polling (hx-trigger="every Ns" on [data-poll]) pauses while an actions menu or a dialog is
// open, so a refresh never closes it under the operator's pointer.
document.addEventListener("htmx:beforeRequest", function (event) {
  var source = event.detail.elt;
  if (!source || !source.hasAttribute("data-poll")) return;
  if (document.querySelector("details.row-menu[open], dialog[open]") ||
      (document.activeElement && source.contains(document.activeElement) &&
       document.activeElement.matches("input, select, textarea, summary"))) {
    event.preventDefault();
  }
});
