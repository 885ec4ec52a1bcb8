/* modomodo leaderboard: sortable tables and filters. No dependencies, no network, no innerHTML:
   rows are only reordered and hidden, so text from users is never parsed as markup. */
(function () {
  "use strict";

  function cellValue(row, index, type) {
    var cell = row.cells[index];
    if (!cell) return null;
    var raw = cell.getAttribute("data-sort");
    if (raw === null) raw = cell.textContent;
    if (type === "num") {
      if (raw === "") return null;
      var v = parseFloat(raw);
      return isNaN(v) ? null : v;
    }
    return raw.toLowerCase();
  }

  function sortTable(table, index, dir) {
    var th = table.tHead.rows[0].cells[index];
    var type = th.getAttribute("data-type") || "text";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (r, i) { r._pos = i; });
    rows.sort(function (a, b) {
      var x = cellValue(a, index, type), y = cellValue(b, index, type);
      if (x === null && y === null) return a._pos - b._pos;
      if (x === null) return 1;            /* missing values last, whatever the direction */
      if (y === null) return -1;
      var c = x < y ? -1 : x > y ? 1 : 0;
      return c === 0 ? a._pos - b._pos : (dir === "ascending" ? c : -c);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
  }

  function initSortable(table) {
    var headers = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(headers, function (th, index) {
      th.tabIndex = 0;
      th.classList.add("sort-header");
      function activate() {
        var current = th.getAttribute("aria-sort");
        /* first click puts the best first: descending where higher is better */
        var first = th.getAttribute("data-better") === "high" ? "descending" : "ascending";
        var dir = current ? (current === "ascending" ? "descending" : "ascending") : first;
        sortTable(table, index, dir);
      }
      th.addEventListener("click", activate);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); activate(); }
      });
    });
  }

  function applyFilters() {
    var families = {};
    var famBoxes = document.querySelectorAll("input[data-family-filter]");
    famBoxes.forEach(function (box) {
      var f = box.getAttribute("data-family-filter");
      families[f] = families[f] || box.checked;
    });
    var budgetBox = document.querySelector("input[name=budget]:checked");
    var budget = budgetBox ? budgetBox.value : "all";
    var search = document.getElementById("strategy-search");
    var needle = search ? search.value.trim().toLowerCase() : "";
    document.querySelectorAll("table.board tbody tr").forEach(function (row) {
      var fam = row.getAttribute("data-family");
      var b = row.getAttribute("data-budget");
      var name = row.getAttribute("data-name");
      var show = true;
      if (famBoxes.length && fam !== null && families[fam] === false) show = false;
      if (budget !== "all" && b !== null && b !== budget) show = false;
      if (needle && name !== null && name.indexOf(needle) === -1) show = false;
      row.hidden = !show;
    });
  }

  function init() {
    document.querySelectorAll("table.sortable").forEach(initSortable);
    document.querySelectorAll("table.board").forEach(function (table) {
      /* default order: normalised regret, best first, where the table has that column */
      var headers = table.tHead ? table.tHead.rows[0].cells : [];
      for (var i = 0; i < headers.length; i++) {
        if (/^Norm\. regret/.test(headers[i].textContent.trim()) && table.classList.contains("sortable") &&
            !table.hasAttribute("data-keep-order")) {
          sortTable(table, i, "ascending");
          break;
        }
      }
    });
    document.querySelectorAll("form.filters").forEach(function (form) {
      form.addEventListener("submit", function (e) { e.preventDefault(); });
      form.addEventListener("input", function (e) {
        /* keep every filter form on the page in step */
        var t = e.target;
        if (t.name === "budget") {
          document.querySelectorAll("input[name=budget][value='" + t.value + "']").forEach(function (x) { x.checked = true; });
        } else if (t.hasAttribute("data-family-filter")) {
          var f = t.getAttribute("data-family-filter");
          document.querySelectorAll("input[data-family-filter]").forEach(function (x) {
            if (x.getAttribute("data-family-filter") === f) x.checked = t.checked;
          });
        }
        applyFilters();
      });
    });
    document.querySelectorAll(".swatch[data-color]").forEach(function (s) {
      var c = s.getAttribute("data-color");
      if (/^#[0-9a-fA-F]{6}$/.test(c)) s.style.backgroundColor = c;
    });
    /* strategy selector: the plots' SVGs bring the line named by their URL fragment forward (CSS inside them) */
    var focus = document.getElementById("focus-select");
    if (focus) {
      focus.addEventListener("change", function () {
        var id = /^s-[0-9a-f]{12}$/.test(focus.value) ? focus.value : "";
        document.querySelectorAll("img[data-focusable]").forEach(function (img) {
          var base = img.getAttribute("src").split("#")[0];
          img.setAttribute("src", id ? base + "#" + id : base);
        });
      });
    }
    document.documentElement.classList.add("js");
    applyFilters();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
