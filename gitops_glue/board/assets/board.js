// glue status board: the service filter and arrow-key moves between the grid's cells.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var filter = document.getElementById("filter");
  var shown = document.getElementById("shown");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#grid tbody tr"));
  var sections = Array.prototype.slice.call(document.querySelectorAll("section.service"));

  function apply() {
    var words = filter.value.trim().toLowerCase();
    var count = 0;
    rows.forEach(function (row) {
      var match = row.dataset.service.toLowerCase().indexOf(words) !== -1;
      row.hidden = !match;
      if (match) count += 1;
    });
    sections.forEach(function (section) {
      section.hidden = section.dataset.service.toLowerCase().indexOf(words) === -1;
    });
    shown.textContent = count + " of " + rows.length + " services shown";
  }
  filter.addEventListener("input", apply);

  // A roving tabindex: Tab enters the grid once, the arrow keys move inside it.
  var first = document.querySelector("#grid tbody td");
  if (first) first.tabIndex = 0;
  document.getElementById("grid").addEventListener("keydown", function (event) {
    var cell = event.target.closest("td, th");
    if (!cell || !cell.parentElement) return;
    var row = cell.parentElement;
    var index = Array.prototype.indexOf.call(row.children, cell);
    var target = null;
    function visible(r, step) {
      do { r = step > 0 ? r.nextElementSibling : r.previousElementSibling; } while (r && r.hidden);
      return r;
    }
    if (event.key === "ArrowRight") target = cell.nextElementSibling;
    else if (event.key === "ArrowLeft") target = index > 1 ? cell.previousElementSibling : null;
    else if (event.key === "ArrowDown") { var d = visible(row, 1); target = d && d.children[index]; }
    else if (event.key === "ArrowUp") { var u = visible(row, -1); target = u && u.children[index]; }
    if (!target || target.tagName !== "TD") return;
    event.preventDefault();
    document.querySelectorAll("#grid td[tabindex='0']").forEach(function (c) { c.tabIndex = -1; });
    target.tabIndex = 0;
    target.focus();
  });
});
