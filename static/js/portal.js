// Small progressive enhancements; every page works without them.
(function () {
  "use strict";
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
      // form.elements: buttons outside the form tied to it by form="..." too.
      Array.prototype.forEach.call(form.elements, function (b) {
        if (b.type === "submit") { window.setTimeout(function () { b.disabled = true; }, 0); }
      });
    });
  });
})();

// Principal picker: type a few letters, pick users and groups from the server's matches.
// <div data-principal-picker data-search-url data-kind data-name> (see principal_field.html).
(function () {
  "use strict";
  var DELAY_MS = 200;

  function chip(picker, id, label) {
    var name = picker.getAttribute("data-name");
    var box = picker.querySelector("[data-principal-chips]");
    var exists = Array.prototype.some.call(box.querySelectorAll("input"), function (input) {
      return input.value === id;
    });
    if (exists) { return; }
    var item = document.createElement("span");
    item.className = "principal-chip";
    item.setAttribute("data-principal-chip", "");
    var hidden = document.createElement("input");
    hidden.type = "hidden";
    hidden.name = name;
    hidden.value = id;
    var text = document.createElement("span");
    text.textContent = label;
    item.appendChild(hidden);
    item.appendChild(text);
    item.appendChild(removeButton(item, label));
    box.appendChild(item);
    box.classList.add("mb-2");
  }

  function removeButton(item, label) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "btn-close btn-close-sm";
    button.setAttribute("aria-label", "Remove " + label);
    button.addEventListener("click", function () { item.remove(); });
    return button;
  }

  // Server-drawn chips are checkboxes (they work without scripts): give them a remove button.
  function enhanceChip(item) {
    var box = item.querySelector('input[type="checkbox"]');
    if (!box || box.disabled) { return; }
    var label = item.querySelector("label").textContent.trim();
    var hidden = document.createElement("input");
    hidden.type = "hidden";
    hidden.name = box.name;
    hidden.value = box.value;
    box.replaceWith(hidden);
    item.appendChild(removeButton(item, label));
  }

  function setup(picker) {
    var input = picker.querySelector("[data-principal-input]");
    var list = picker.querySelector("[data-principal-matches]");
    if (!input || !list) { return; }
    picker.querySelectorAll("[data-principal-chip]").forEach(enhanceChip);
    picker.querySelectorAll(".principal-help-js").forEach(function (el) { el.classList.remove("d-none"); });
    picker.querySelectorAll(".principal-help-plain").forEach(function (el) { el.classList.add("d-none"); });
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", list.id);
    input.setAttribute("aria-expanded", "false");
    var timer = null;
    var asked = "";

    function close() {
      list.classList.add("d-none");
      list.textContent = "";
      input.setAttribute("aria-expanded", "false");
    }

    function show(matches) {
      list.textContent = "";
      if (!matches.length) {
        var none = document.createElement("li");
        none.className = "list-group-item small text-muted";
        none.textContent = "No user or group matches.";
        list.appendChild(none);
      }
      matches.forEach(function (match) {
        var option = document.createElement("li");
        option.className = "list-group-item list-group-item-action principal-match";
        option.setAttribute("role", "option");
        option.setAttribute("tabindex", "-1");
        option.setAttribute("data-id", match.id);
        option.setAttribute("data-label", match.label);
        option.textContent = match.label;
        if (match.detail) {
          var detail = document.createElement("span");
          detail.className = "small text-muted ms-2";
          detail.textContent = match.detail;
          option.appendChild(detail);
        }
        list.appendChild(option);
      });
      list.classList.remove("d-none");
      input.setAttribute("aria-expanded", "true");
    }

    function search() {
      var q = input.value.trim();
      if (q.length < 1) { close(); return; }
      asked = q;
      var url = picker.getAttribute("data-search-url") + "?" + new URLSearchParams({
        q: q, kind: picker.getAttribute("data-kind") || "any"
      }).toString();
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : []; })
        .then(function (matches) { if (asked === input.value.trim()) { show(matches); } })
        .catch(close);
    }

    function pick(option) {
      chip(picker, option.getAttribute("data-id"), option.getAttribute("data-label"));
      input.value = "";
      close();
      input.focus();
    }

    function options() { return Array.prototype.slice.call(list.querySelectorAll("[data-id]")); }

    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(search, DELAY_MS);
    });
    input.addEventListener("keydown", function (event) {
      var found = options();
      if (event.key === "ArrowDown" && found.length) { event.preventDefault(); found[0].focus(); }
      else if (event.key === "Escape") { close(); }
      else if (event.key === "Enter" && found.length && !list.classList.contains("d-none")) {
        event.preventDefault();  // pick the first match rather than sending the form
        pick(found[0]);
      }
    });
    list.addEventListener("click", function (event) {
      var option = event.target.closest("[data-id]");
      if (option) { pick(option); }
    });
    list.addEventListener("keydown", function (event) {
      var found = options();
      var at = found.indexOf(document.activeElement);
      if (event.key === "ArrowDown" && at < found.length - 1) { event.preventDefault(); found[at + 1].focus(); }
      else if (event.key === "ArrowUp") { event.preventDefault(); (at > 0 ? found[at - 1] : input).focus(); }
      else if (event.key === "Enter" && at >= 0) { event.preventDefault(); pick(found[at]); }
      else if (event.key === "Escape") { close(); input.focus(); }
    });
    document.addEventListener("click", function (event) {
      if (!picker.contains(event.target)) { close(); }
    });
  }

  document.querySelectorAll("[data-principal-picker]").forEach(setup);
})();

// Show and hide fields by what the chosen settings ask for.
(function () {
  "use strict";

  function toggle(element, visible) {
    if (!element) { return; }
    // A field the server marked wrong stays in sight, whatever the settings say.
    if (!visible && element.querySelector(".is-invalid, .invalid-feedback")) { return; }
    element.classList.toggle("d-none", !visible);
  }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { if (!response.ok) { throw new Error(response.status); } return response.json(); });
  }

  // Add assignments: the settings panel follows the role and scope chosen; the MFA code shows
  // only for an active assignment of a role whose settings ask for it.
  var panel = document.querySelector("[data-role-settings-url]");
  var role = document.getElementById("id_role");
  if (panel && role && role.form) {
    var form = role.form;
    var scope = document.getElementById("id_scope");
    var title = panel.querySelector("[data-role-settings-title]");
    var list = panel.querySelector("[data-role-settings-list]");
    var empty = panel.querySelector("[data-role-settings-empty]");
    var known = null;

    var kind = function () {
      var checked = form.querySelector('input[name="kind"]:checked');
      return checked ? checked.value : "";
    };

    var applyFields = function () {
      // Eligible assignments never ask for a code; with the settings unknown (no answer yet,
      // or it failed) an active one keeps the field, and the server decides.
      var mfa = kind() === "active" && (known === null || known.mfa_on_active);
      toggle(document.getElementById("div_id_mfa_code"), mfa);
      toggle(scope && document.getElementById("div_id_scope"), !(known && known.directory));
    };

    var draw = function (data) {
      list.textContent = "";
      title.textContent = data.role ? "Settings of " + data.role : "Role settings";
      data.summary.forEach(function (row) {
        var item = document.createElement("li");
        item.className = "list-group-item d-flex justify-content-between gap-2";
        var label = document.createElement("span");
        label.textContent = row[0];
        var value = document.createElement("strong");
        value.textContent = row[1];
        item.appendChild(label);
        item.appendChild(value);
        list.appendChild(item);
      });
      empty.textContent = data.needs_scope ? "Choose the scope: the settings that apply depend on it." : empty.getAttribute("data-default-text");
      toggle(empty, !data.summary.length);
    };

    var refresh = function () {
      if (!role.value) {
        known = null;
        draw({ role: "", summary: [] });
        applyFields();
        return;
      }
      var query = new URLSearchParams({ role: role.value, scope: scope ? scope.value : "" });
      getJson(panel.getAttribute("data-role-settings-url") + "?" + query.toString())
        .then(function (data) { known = data.needs_scope ? null : data; draw(data); applyFields(); })
        .catch(function () { known = null; applyFields(); });
    };

    role.addEventListener("change", refresh);
    if (scope) { scope.addEventListener("change", refresh); }
    form.querySelectorAll('input[name="kind"]').forEach(function (radio) {
      radio.addEventListener("change", applyFields);
    });
    refresh();
  }

  // Activate: ticket and MFA fields show only when the scopes chosen ask for them.
  var activate = document.querySelector("[data-activation-settings-url]");
  if (activate) {
    var refreshActivation = function () {
      var query = new URLSearchParams();
      activate.querySelectorAll('input[name="eligible"]').forEach(function (input) {
        query.append("eligible", input.value);
      });
      activate.querySelectorAll('select[name^="scope_"]').forEach(function (select) {
        query.append(select.name, select.value);
      });
      getJson(activate.getAttribute("data-activation-settings-url") + "?" + query.toString())
        .then(function (needs) {
          toggle(document.getElementById("div_id_ticket_number"), needs.ticket);
          toggle(document.getElementById("div_id_ticket_system"), needs.ticket);
          var code = document.getElementById("div_id_mfa_code");
          toggle(code && (code.closest("fieldset") || code), needs.mfa);
        })
        .catch(function () { /* keep every field: the server checks what is needed */ });
    };
    activate.querySelectorAll('select[name^="scope_"]').forEach(function (select) {
      select.addEventListener("change", refreshActivation);
    });
    if (activate.querySelector('select[name^="scope_"]')) { refreshActivation(); }
  }
})();
