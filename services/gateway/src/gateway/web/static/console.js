// Patchbay console: the few things the server cannot do (columns kept per browser, tick boxes).
// Everything else is plain forms and links, boosted by htmx.
(function () {
  "use strict";
  var KEY = "patchbay.board.columns";

  function load() {
    try { return JSON.parse(localStorage.getItem(KEY) || "null"); } catch (e) { return null; }
  }
  function save(state) { localStorage.setItem(KEY, JSON.stringify(state)); }

  function defaults(table) {
    var order = [], hidden = [];
    table.querySelectorAll("thead th[data-col]").forEach(function (th) {
      order.push(th.dataset.col);
      if (th.hasAttribute("data-default-hidden")) hidden.push(th.dataset.col);
    });
    return { order: order, hidden: hidden };
  }

  function current(table) {
    var base = defaults(table), saved = load();
    if (!saved) return base;
    // columns added since the browser saved its choice go last, with their default visibility
    var order = saved.order.filter(function (k) { return base.order.indexOf(k) >= 0; });
    base.order.forEach(function (k) {
      if (order.indexOf(k) < 0) {
        order.push(k);
        if (base.hidden.indexOf(k) >= 0 && saved.hidden.indexOf(k) < 0) saved.hidden.push(k);
      }
    });
    return { order: order, hidden: saved.hidden.filter(function (k) { return order.indexOf(k) >= 0; }) };
  }

  function apply(table, state) {
    table.querySelectorAll("tr").forEach(function (tr) {
      state.order.forEach(function (key) {
        var c = tr.querySelector(':scope > [data-col="' + key + '"]');
        if (c) tr.appendChild(c);
      });
    });
    table.querySelectorAll("[data-col]").forEach(function (c) {
      c.classList.toggle("col-hidden", state.hidden.indexOf(c.dataset.col) >= 0);
    });
    var list = document.getElementById("column-list");
    if (list) {
      state.order.forEach(function (key) {
        var li = list.querySelector('li[data-col="' + key + '"]');
        if (li) list.appendChild(li);
      });
      list.querySelectorAll(".col-toggle").forEach(function (box) {
        box.checked = state.hidden.indexOf(box.dataset.col) < 0;
      });
    }
  }

  function board() { return document.getElementById("board"); }

  function refreshColumns() {
    var table = board();
    if (table) apply(table, current(table));
  }

  function change(mutate) {
    var table = board();
    if (!table) return;
    var state = current(table);
    mutate(state);
    save(state);
    apply(table, state);
  }

  function updateCount() {
    var ticks = document.querySelectorAll(".row-tick");
    var n = 0;
    ticks.forEach(function (t) { if (t.checked) n++; });
    var all = document.getElementById("select-all");
    if (all) {
      all.checked = ticks.length > 0 && n === ticks.length;
      all.indeterminate = n > 0 && n < ticks.length;
    }
    var label = document.getElementById("selected-count");
    var matching = document.getElementById("all-matching");
    if (label) label.textContent = (matching && matching.checked) ? "all matching selected" : n + " selected";
  }

  document.addEventListener("change", function (ev) {
    var t = ev.target;
    if (t.classList.contains("col-toggle")) {
      change(function (s) {
        s.hidden = s.hidden.filter(function (k) { return k !== t.dataset.col; });
        if (!t.checked) s.hidden.push(t.dataset.col);
      });
    } else if (t.id === "select-all") {
      document.querySelectorAll(".row-tick").forEach(function (b) { b.checked = t.checked; });
      updateCount();
    } else if (t.classList.contains("row-tick") || t.id === "all-matching") {
      updateCount();
    }
  });

  document.addEventListener("click", function (ev) {
    var t = ev.target;
    if (t.classList.contains("col-up") || t.classList.contains("col-down")) {
      var up = t.classList.contains("col-up");
      change(function (s) {
        var i = s.order.indexOf(t.dataset.col), j = up ? i - 1 : i + 1;
        if (i < 0 || j < 0 || j >= s.order.length) return;
        s.order[i] = s.order[j];
        s.order[j] = t.dataset.col;
      });
    } else if (t.id === "columns-reset") {
      localStorage.removeItem(KEY);
      refreshColumns();
    } else if (t.classList.contains("copy-cells")) {
      copyCells(document.getElementById(t.dataset.table), t.dataset.headers === "1");
    } else if (t.classList.contains("cells-select")) {
      // summary tables: clicking cells selects them; the sum and true average are shown
      t.classList.toggle("picked");
      summarize(t.closest("table"));
    }
  });

  function summarize(table) {
    if (!table) return;
    var out = document.getElementById(table.dataset.totalsTarget || "cell-totals");
    var picked = table.querySelectorAll("td.picked");
    if (!out) return;
    if (!picked.length) { out.textContent = ""; return; }
    var sum = 0, weight = 0, weighted = 0, col = null, mixed = false;
    picked.forEach(function (td) {
      var v = parseFloat(td.dataset.value || td.textContent);
      if (!isNaN(v)) sum += v;
      var w = parseFloat(td.dataset.weight || "1");
      weight += w; weighted += v * w;
      if (col !== null && col !== td.dataset.col) mixed = true;
      col = td.dataset.col;
    });
    var avg = weight ? weighted / weight : 0;
    out.textContent = picked.length + (picked.length === 1 ? " cell" : " cells") + (mixed ? " (several columns)" : "") +
      ": sum " + sum.toFixed(4).replace(/\.?0+$/, "") + ", average " + avg.toFixed(4).replace(/\.?0+$/, "");
  }

  // summary tables: the picked cells as tab-separated text, by row, in column order (as a spreadsheet pastes)
  function tsvCell(text) {
    return /[\t\n"]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }
  function copyCells(table, withHeaders) {
    var status = document.getElementById("copy-status");
    var picked = table ? table.querySelectorAll("td.picked") : [];
    if (!picked.length) { if (status) status.textContent = "Nothing picked: click cells (or Space on a cell) first."; return; }
    var cols = [], rows = [];
    picked.forEach(function (td) {
      if (cols.indexOf(td.cellIndex) < 0) cols.push(td.cellIndex);
      if (rows.indexOf(td.parentElement) < 0) rows.push(td.parentElement);
    });
    cols.sort(function (a, b) { return a - b; });
    var lines = rows.map(function (tr) {
      return cols.map(function (ci) {
        var td = tr.cells[ci];
        return td && td.classList.contains("picked") ? tsvCell(td.textContent.trim()) : "";
      }).join("\t");
    });
    if (withHeaders) {
      var head = table.tHead.rows[0];
      lines.unshift(cols.map(function (ci) { return tsvCell(head.cells[ci].textContent.trim()); }).join("\t"));
    }
    var text = lines.join("\n");
    var said = picked.length + (picked.length === 1 ? " cell" : " cells") + " copied" + (withHeaders ? " with headers" : "");
    function fallback() {
      var area = document.createElement("textarea");
      area.value = text; area.setAttribute("readonly", ""); area.className = "sr-only";
      document.body.appendChild(area); area.select();
      var ok = document.execCommand("copy");
      document.body.removeChild(area);
      if (status) status.textContent = ok ? said : "The browser refused to copy: select the cells' text and press Ctrl+C.";
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { if (status) status.textContent = said; }, fallback);
    } else { fallback(); }
  }

  // bulk upload: the file's upload progress, then "processing" until the per-row results arrive
  document.addEventListener("htmx:xhr:progress", function (ev) {
    var bar = document.getElementById("upload-progress");
    var form = document.getElementById("upload-form");
    if (!bar || !form || !form.contains(ev.target)) return;
    var d = ev.detail;
    if (!d.lengthComputable || !d.total) return;
    bar.hidden = false;
    bar.value = Math.round(100 * d.loaded / d.total);
    document.getElementById("upload-status").textContent = d.loaded < d.total
      ? "uploading " + bar.value + "%" : "uploaded; checking and creating every row…";
  });
  document.addEventListener("htmx:beforeRequest", function (ev) {
    var button = document.getElementById("upload");
    var form = document.getElementById("upload-form");
    if (button && form && form.contains(ev.target)) {
      button.disabled = true;
      document.getElementById("upload-status").textContent = "uploading…";
    }
  });

  // summary cells by keyboard: one Tab stop per table, arrows move, Space or Enter picks (as a click does)
  function cellsInit() {
    document.querySelectorAll("table[data-totals-target]").forEach(function (table) {
      var cells = table.querySelectorAll("td.cells-select");
      if (!cells.length || table.querySelector("td.cells-select[tabindex]")) return;
      cells.forEach(function (td, i) { td.tabIndex = i === 0 ? 0 : -1; });
      var out = document.getElementById(table.dataset.totalsTarget);
      if (out) out.setAttribute("aria-live", "polite");
    });
  }
  document.addEventListener("focusin", cellsInit);  // also after the Live view swapped its table in
  document.addEventListener("keydown", function (ev) {
    var td = ev.target;
    if (!td.classList || !td.classList.contains("cells-select")) return;
    var row = td.parentElement, at = Array.prototype.indexOf.call(row.children, td), next = null;
    if (ev.key === " " || ev.key === "Enter") {
      ev.preventDefault();
      td.classList.toggle("picked");
      summarize(td.closest("table"));
      return;
    }
    if (ev.key === "ArrowRight") next = td.nextElementSibling;
    else if (ev.key === "ArrowLeft") next = td.previousElementSibling;
    else if (ev.key === "ArrowDown" && row.nextElementSibling) next = row.nextElementSibling.children[at];
    else if (ev.key === "ArrowUp" && row.previousElementSibling) next = row.previousElementSibling.children[at];
    if (next && next.classList.contains("cells-select")) {
      ev.preventDefault();
      td.tabIndex = -1;
      next.tabIndex = 0;
      next.focus();
    }
  });

  function init() { refreshColumns(); updateCount(); cellsInit(); }
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:load", init);
  if (document.readyState !== "loading") init();
})();
