// Small progressive enhancements; every page works without them.
(function () {
  "use strict";
  // Filter a list of checkboxes by typing: <input data-filter-target="#id">.
  document.querySelectorAll("[data-filter-target]").forEach(function (input) {
    var list = document.querySelector(input.getAttribute("data-filter-target"));
    if (!list) { return; }
    input.addEventListener("input", function () {
      var needle = input.value.trim().toLowerCase();
      list.querySelectorAll("[data-filter-text]").forEach(function (item) {
        var hay = item.getAttribute("data-filter-text").toLowerCase();
        item.classList.toggle("d-none", needle !== "" && hay.indexOf(needle) === -1);
      });
    });
  });
  // Select-all checkbox: <input type="checkbox" data-select-all="name">.
  document.querySelectorAll("[data-select-all]").forEach(function (box) {
    box.addEventListener("change", function () {
      var name = box.getAttribute("data-select-all");
      document.querySelectorAll('input[type="checkbox"][name="' + name + '"]').forEach(function (item) {
        if (!item.closest(".d-none")) { item.checked = box.checked; }
      });
    });
  });
  // Confirm before destructive actions: <button data-confirm="Remove?">.
  document.querySelectorAll("[data-confirm]").forEach(function (el) {
    el.addEventListener("click", function (event) {
      if (!window.confirm(el.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
  // Disable submit buttons once a form is sent, so a double click sends one request.
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll('button[type="submit"]').forEach(function (b) {
        window.setTimeout(function () { b.disabled = true; }, 0);
      });
    });
  });
})();
