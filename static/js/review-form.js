// The access review form: show only the fields that apply to the choices made (start at a
// date, the recurrence's end, the reviewers of the kind chosen). Without scripts every field
// shows, and the server reads only those that apply.
(function () {
  "use strict";
  var form = document.getElementById("review-form");
  if (!form) { return; }

  function value(name) {
    var checked = form.querySelector('input[name="' + name + '"]:checked');
    if (checked) { return checked.value; }
    var field = form.querySelector('select[name="' + name + '"]');
    return field ? field.value : null;
  }

  function show(id, visible) {
    var wrapper = document.getElementById(id);
    if (wrapper) { wrapper.classList.toggle("d-none", !visible); }
  }

  function showAll(selector, visible) {
    form.querySelectorAll(selector).forEach(function (element) {
      element.classList.toggle("d-none", !visible);
    });
  }

  function update() {
    var start = value("start_when");
    if (start !== null) { show("div_id_start", start === "later"); }
    var recurrence = value("recurrence");
    if (recurrence !== null) { showAll(".review-recurrence-end", recurrence !== "one_time"); }
    var end = value("recurrence_end");
    show("div_id_recurrence_end_date", end === "on_date");
    show("div_id_recurrence_count", end === "after_count");
    var reviewers = value("reviewer_type");
    if (reviewers !== null) {
      show("div_id_reviewers", reviewers === "selected");
      show("div_id_fallback_reviewers", reviewers === "manager");
    }
    var groups = form.querySelector('input[name="include_groups"]');
    if (groups) { show("div_id_group_handling", groups.checked); }
  }

  // The scope select has a search box (scope-picker.js): typing a path is for pages without it.
  showAll(".review-scope-path", false);
  form.addEventListener("change", update);
  update();
})();
