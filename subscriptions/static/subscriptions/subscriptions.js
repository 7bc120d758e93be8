/* Two small things the pages work without:
 * - fill the signup form's hidden time zone from the browser (Intl API);
 * - mark follow buttons on cached pages with this reader's state, and toggle in place.
 * Without JavaScript the forms post as they are and the server answers with a page. */
(function () {
  "use strict";

  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) {
    zone = "";
  }
  Array.prototype.forEach.call(document.querySelectorAll("input[data-tz-guess]"), function (input) {
    if (!input.value && zone) { input.value = zone; }
  });

  var forms = document.querySelectorAll("form[data-follow-kind]");
  if (!forms.length || !window.fetch || !window.FormData) { return; }
  var status = document.getElementById("follow-status");

  function render(form, following) {
    var button = form.querySelector("button");
    button.setAttribute("aria-pressed", following ? "true" : "false");
    form.querySelector(".follow-label").textContent =
      following ? form.getAttribute("data-label-on") : form.getAttribute("data-label-off");
    form.querySelector("input[name=action]").value = following ? "unfollow" : "follow";
  }

  function same(kind, slug) {
    return Array.prototype.filter.call(forms, function (form) {
      return form.getAttribute("data-follow-kind") === kind && form.getAttribute("data-follow-slug") === slug;
    });
  }

  fetch(forms[0].getAttribute("data-state-url"), {
    credentials: "same-origin",
    headers: { Accept: "application/json" }
  }).then(function (response) {
    if (!response.ok) { throw new Error("state " + response.status); }
    return response.json();
  }).then(function (state) {
    Array.prototype.forEach.call(forms, function (form) {
      var list = form.getAttribute("data-follow-kind") === "category" ? state.categories : state.topics;
      render(form, list.indexOf(form.getAttribute("data-follow-slug")) !== -1);
    });
    document.documentElement.setAttribute("data-follow-ready", "");
  }).catch(function () { /* the buttons keep working as plain forms */ });

  Array.prototype.forEach.call(forms, function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button");
      button.disabled = true;
      // form.action would be the input named "action": read the attribute.
      fetch(form.getAttribute("action"), {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      }).then(function (response) {
        if (!response.ok) { throw new Error("follow " + response.status); }
        return response.json();
      }).then(function (data) {
        same(data.kind, data.slug).forEach(function (other) { render(other, data.following); });
        if (status) { status.textContent = (data.following ? "You follow " : "You no longer follow ") + data.name + "."; }
        button.disabled = false;
      }).catch(function () {
        button.disabled = false;
        form.submit();
      });
    });
  });
})();
