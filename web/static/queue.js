/* The queue page's "select all on this page" checkbox (progressive enhancement).
   Without JavaScript the page offers a "Tout cocher sur cette page" link instead; with it,
   the checkbox in the table head ticks or unticks every row of the page, and follows the
   rows (ticked when all are, mixed when some are). Delegated on the document, so it keeps
   working after htmx swaps the results. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function rows(box) {
    var form = box.form || document;
    return Array.prototype.slice.call(form.querySelectorAll('input[name="selection"]'));
  }

  function sync(form) {
    var box = form.querySelector("input[data-select-all]");
    if (!box) return;
    var all = rows(box);
    var ticked = all.filter(function (c) { return c.checked; }).length;
    box.checked = all.length > 0 && ticked === all.length;
    box.indeterminate = ticked > 0 && ticked < all.length;
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLInputElement) || !target.form) return;
    if (target.hasAttribute("data-select-all")) {
      rows(target).forEach(function (c) { c.checked = target.checked; });
      target.indeterminate = false;
    } else if (target.name === "selection") {
      sync(target.form);
    }
  });
})();
