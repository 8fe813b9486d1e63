// Patchbay console, the board's grid: select cells (click, Shift+click, Ctrl/Cmd+click, arrows,
// Shift+arrows, Ctrl+A) and copy them as tab-separated text, with or without the headings.
// Without selected cells, Copy takes the ticked rows. Loaded by board.html; runs once per page.
(function () {
  "use strict";
  if (window.patchbayBoardGrid) return;
  window.patchbayBoardGrid = true;

  var anchor = null, active = null, pending = null;

  function grid() { return document.getElementById("board"); }

  function visible(el) { return !el.classList.contains("col-hidden"); }

  // the data cells as a matrix (rows of the page, visible columns in their shown order)
  function matrix() {
    var table = grid();
    if (!table) return [];
    return Array.prototype.map.call(table.querySelectorAll("tbody tr.data-row"), function (tr) {
      return Array.prototype.filter.call(tr.querySelectorAll(":scope > td[data-col]"), visible);
    });
  }

  function position(m, td) {
    for (var r = 0; r < m.length; r++) {
      var c = m[r].indexOf(td);
      if (c >= 0) return [r, c];
    }
    return null;
  }

  function selected() { return grid() ? grid().querySelectorAll('tbody td[aria-selected="true"]') : []; }

  function mark(td, on) { td.setAttribute("aria-selected", on ? "true" : "false"); }

  function clear() { Array.prototype.forEach.call(selected(), function (td) { mark(td, false); }); }

  function focusCell(td) {
    if (!td) return;
    var table = grid();
    table.querySelectorAll('tbody td[tabindex="0"]').forEach(function (c) { c.setAttribute("tabindex", "-1"); });
    td.setAttribute("tabindex", "0");
    td.focus({ preventScroll: false });
    active = td;
  }

  function selectRange(m, from, to) {
    var a = position(m, from), b = position(m, to);
    if (!a || !b) return;
    for (var r = Math.min(a[0], b[0]); r <= Math.max(a[0], b[0]); r++) {
      for (var c = Math.min(a[1], b[1]); c <= Math.max(a[1], b[1]); c++) {
        if (m[r][c]) mark(m[r][c], true);
      }
    }
  }

  function say(text) {
    var out = document.getElementById("grid-status");
    if (out) out.textContent = text;
  }

  // a cell as TSV wants it: quoted (inner quotes doubled) when it holds a tab, a newline or a quote
  function tsvCell(text) {
    return /[\t\n\r"]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  function cellText(td) { return td.textContent.replace(/^\s+|\s+$/g, ""); }

  function heading(col) {
    var th = grid().querySelector('thead th[data-col="' + col + '"]');
    return th ? (th.dataset.label || cellText(th)) : col;
  }

  // the block to copy: rows with a selected cell x columns with one (gaps stay empty);
  // no selected cell: the ticked rows, every visible column
  function block() {
    var m = matrix(), rows = [], cols = [];
    m.forEach(function (row) {
      if (row.some(function (td) { return td.getAttribute("aria-selected") === "true"; })) rows.push(row);
      row.forEach(function (td, c) { if (td.getAttribute("aria-selected") === "true" && cols.indexOf(c) < 0) cols.push(c); });
    });
    if (rows.length) {
      cols.sort(function (a, b) { return a - b; });
      return { rows: rows, cols: cols, only: true };
    }
    rows = m.filter(function (row) {
      var tick = row.length && row[0].parentNode.querySelector(".row-tick");
      return tick && tick.checked;
    });
    return { rows: rows, cols: rows.length ? rows[0].map(function (_, c) { return c; }) : [], only: false };
  }

  function tsv(withHeaders) {
    var b = block();
    if (!b.rows.length) return null;
    var lines = b.rows.map(function (row) {
      return b.cols.map(function (c) {
        var td = row[c];
        return td && (!b.only || td.getAttribute("aria-selected") === "true") ? tsvCell(cellText(td)) : "";
      }).join("\t");
    });
    if (withHeaders) {
      lines.unshift(b.cols.map(function (c) { return tsvCell(heading(b.rows[0][c].dataset.col)); }).join("\t"));
    }
    return { text: lines.join("\n"), rows: b.rows.length, cols: b.cols.length };
  }

  function fallback(text) {
    pending = text;
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    pending = null;
    return ok;
  }

  function copy(withHeaders) {
    var out = tsv(withHeaders);
    if (!out) { say("Select cells or tick rows to copy."); return; }
    var table = grid();
    table.dataset.copied = out.text;  // what the last copy put on the clipboard (tests, assistive tools)
    var done = "Copied " + out.rows + " row" + (out.rows === 1 ? "" : "s") + " × " + out.cols +
      " column" + (out.cols === 1 ? "" : "s") + (withHeaders ? " with headers." : ".");
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(out.text).then(function () { say(done); }, function () {
        say(fallback(out.text) ? done : "The browser refused the clipboard.");
      });
    } else {
      say(fallback(out.text) ? done : "The browser refused the clipboard.");
    }
  }

  document.addEventListener("copy", function (ev) {
    if (pending === null) return;
    ev.clipboardData.setData("text/plain", pending);
    ev.preventDefault();
  });

  document.addEventListener("mousedown", function (ev) {
    var td = ev.target.closest && ev.target.closest("#board tbody td[data-col]");
    if (td && ev.shiftKey) ev.preventDefault();  // no text selection on a Shift+click range
  });

  document.addEventListener("click", function (ev) {
    var t = ev.target;
    if (t.id === "copy-cells" || t.id === "copy-with-headers") { copy(t.id === "copy-with-headers"); return; }
    var td = t.closest && t.closest("#board tbody td[data-col]");
    if (!td || t.closest("a, input, button")) return;
    var m = matrix();
    if (ev.shiftKey && anchor && position(m, anchor)) {
      if (!(ev.ctrlKey || ev.metaKey)) clear();
      selectRange(m, anchor, td);
    } else if (ev.ctrlKey || ev.metaKey) {
      mark(td, td.getAttribute("aria-selected") !== "true");
      anchor = td;
    } else {
      clear();
      mark(td, true);
      anchor = td;
    }
    focusCell(td);
  });

  var MOVES = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };

  document.addEventListener("keydown", function (ev) {
    var td = ev.target.closest && ev.target.closest("#board tbody td[data-col]");
    if (!td || ev.target !== td) return;  // keys inside a link or a tick box keep their meaning
    var m = matrix(), here = position(m, td), ctrl = ev.ctrlKey || ev.metaKey, key = ev.key;
    if (!here) return;
    if (MOVES[key] || key === "Home" || key === "End") {
      var r = here[0], c = here[1];
      if (MOVES[key]) { r += MOVES[key][0]; c += MOVES[key][1]; }
      if (key === "Home") c = 0;
      if (key === "End") c = m[r].length - 1;
      r = Math.max(0, Math.min(m.length - 1, r));
      c = Math.max(0, Math.min(m[r].length - 1, c));
      var next = m[r][c];
      if (ev.shiftKey) {
        if (!anchor || !position(m, anchor)) anchor = td;
        clear();
        selectRange(m, anchor, next);
      } else {
        clear();
        mark(next, true);
        anchor = next;
      }
      focusCell(next);
      ev.preventDefault();
    } else if (ctrl && (key === "a" || key === "A")) {
      m.forEach(function (row) { row.forEach(function (cell) { mark(cell, true); }); });
      say("All " + m.length + " rows on this page selected.");
      ev.preventDefault();
    } else if (ctrl && (key === "c" || key === "C")) {
      copy(ev.shiftKey);
      ev.preventDefault();
    } else if (key === "Escape") {
      clear();
    } else if (key === "Enter") {
      var link = td.querySelector("a[href]");
      if (link) link.click();
    } else if (key === " " && !ctrl) {
      mark(td, td.getAttribute("aria-selected") !== "true");
      anchor = td;
      ev.preventDefault();
    }
  });

  function init() {
    anchor = null; active = null;
    var first = matrix()[0];
    if (first && first[0] && !grid().querySelector('tbody td[tabindex="0"]')) first[0].setAttribute("tabindex", "0");
  }
  document.addEventListener("htmx:load", init);
  if (document.readyState !== "loading") init(); else document.addEventListener("DOMContentLoaded", init);
})();
