// Light or dark: the operator's choice (localStorage) over the operating system's. Loaded in
// <head> without defer, so the stored theme is set before the first paint. Without
// JavaScript the toggle stays hidden and Pico follows prefers-color-scheme.
(function () {
  var KEY = "theme";
  var root = document.documentElement;
  function stored() {
    try { return localStorage.getItem(KEY); } catch (e) { return null; }  // storage disabled
  }
  function current() {
    var chosen = root.getAttribute("data-theme");
    if (chosen) return chosen;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches
      ? "dark" : "light";
  }
  var saved = stored();
  if (saved === "dark" || saved === "light") root.setAttribute("data-theme", saved);

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.querySelector("[data-theme-toggle]");
    if (!button) return;
    // The button names the theme it switches to.
    function show() { button.textContent = current() === "dark" ? "Light theme" : "Dark theme"; }
    button.hidden = false;
    show();
    button.addEventListener("click", function () {
      var next = current() === "dark" ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try { localStorage.setItem(KEY, next); } catch (e) { /* kept for this page only */ }
      show();
    });
  });
})();
