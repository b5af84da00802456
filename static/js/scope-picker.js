// Scope pickers: a select that offers only a few scopes (the eligible one, the one chosen) and
// a search box that asks the server for the scopes below as one types
// (data-scope-search-url: assignments:my_scope_search), so no page carries the whole tree.
(function () {
  "use strict";

  function setup(select) {
    var url = select.getAttribute("data-scope-search-url");
    var box = document.createElement("input");
    box.type = "search";
    box.className = "form-control form-control-sm mb-1";
    box.placeholder = select.getAttribute("data-scope-search-label") || "Search scopes";
    box.setAttribute("aria-label", box.placeholder);
    box.setAttribute("data-scope-search-for", select.id || select.name);
    var status = document.createElement("div");
    status.className = "form-text";
    status.setAttribute("aria-live", "polite");
    select.parentNode.insertBefore(box, select);
    select.parentNode.insertBefore(status, select.nextSibling);

    var timer = null;
    var asked = 0;

    function show(data, number) {
      if (number !== asked) { return; } // an older answer arriving late
      select.querySelectorAll("option[data-found]").forEach(function (option) {
        if (!option.selected) { option.remove(); }
      });
      var present = {};
      select.querySelectorAll("option").forEach(function (option) { present[option.value] = true; });
      data.results.forEach(function (scope) {
        if (present[String(scope.id)]) { return; }
        var option = document.createElement("option");
        option.value = scope.id;
        option.textContent = scope.label + " (" + scope.path + ")";
        option.setAttribute("data-found", "");
        select.appendChild(option);
      });
      status.textContent = data.results.length
        ? data.results.length + (data.more ? "+ scopes found: type more to narrow them." : " found: choose one in the list.")
        : "No scope below matches.";
    }

    function search() {
      var number = ++asked;
      var query = url + (url.indexOf("?") < 0 ? "?" : "&") + "q=" + encodeURIComponent(box.value.trim());
      fetch(query, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { if (!response.ok) { throw new Error(response.status); } return response.json(); })
        .then(function (data) { show(data, number); })
        .catch(function () { status.textContent = "The search did not answer; try again."; });
    }

    box.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(search, 250);
    });
    box.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); window.clearTimeout(timer); search(); }
    });
  }

  document.querySelectorAll("select[data-scope-search-url]").forEach(setup);
})();
