// Progressive help for the console; every page works without it.
// - "Select all" checkbox above a table of failures (hidden until this script shows it).
// - A confirmation before a button marked data-confirm (delete, remove) submits its form.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input.select-all").forEach(function (all) {
      var form = all.closest("form");
      var boxes = form ? form.querySelectorAll('input[type=checkbox][name="ids"]') : [];
      all.hidden = false;
      all.addEventListener("change", function () {
        boxes.forEach(function (box) { box.checked = all.checked; });
      });
      boxes.forEach(function (box) {
        box.addEventListener("change", function () {
          all.checked = Array.prototype.every.call(boxes, function (b) { return b.checked; });
        });
      });
    });
    document.querySelectorAll("button[data-confirm]").forEach(function (button) {
      button.addEventListener("click", function (event) {
        if (!window.confirm(button.getAttribute("data-confirm"))) {
          event.preventDefault();
        }
      });
    });
  });
})();
