// Filters the index's table of services by name and summary as one
// types. Without JavaScript the box stays hidden and every service shows.
(function () {
  "use strict";
  var box = document.getElementById("search");
  var table = document.getElementById("services");
  var none = document.getElementById("no-match");
  if (!box || !table) { return; }
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  function filter() {
    var words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    rows.forEach(function (row) {
      var text = row.getAttribute("data-search") || "";
      var match = words.every(function (word) { return text.indexOf(word) !== -1; });
      row.hidden = !match;
      if (match) { shown += 1; }
    });
    if (none) { none.hidden = shown !== 0; }
  }
  box.hidden = false;
  var query = new URLSearchParams(window.location.search).get("q");
  if (query) { box.value = query; }
  box.addEventListener("input", filter);
  filter();
})();
