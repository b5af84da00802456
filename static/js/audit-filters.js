// The audit log's date filter: a preset and custom days exclude each other (the days win on
// the server); choosing one clears the other, so what the form shows is what it asks for.
(function () {
  "use strict";
  document.querySelectorAll("[data-audit-filters]").forEach(function (form) {
    var period = form.querySelector("[data-audit-period]");
    var days = form.querySelectorAll("[data-audit-day]");
    if (!period) { return; }
    period.addEventListener("change", function () {
      if (period.value) { days.forEach(function (day) { day.value = ""; }); }
    });
    days.forEach(function (day) {
      day.addEventListener("change", function () {
        if (day.value) { period.value = ""; }
      });
    });
  });
})();
