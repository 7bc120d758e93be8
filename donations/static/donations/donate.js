// Keeps the donate button and the fee note in step with the chosen amount, so the
// button always says what will happen ("Give $25 monthly"). Without JavaScript the
// button says "Give monthly" and Stripe's page shows the total before paying.
(function () {
  "use strict";
  var form = document.querySelector(".donate-form");
  if (!form) return;
  var button = form.querySelector("[data-submit]");
  var note = form.querySelector("[data-fee-note]");
  var custom = form.querySelector("#id_custom_amount");
  var coverFee = form.querySelector("#id_cover_fee");
  var word = form.getAttribute("data-frequency-word");
  // The page's own wording, translated on the server: {amount}, {when} and {fee} are filled here.
  var giveWhen = form.getAttribute("data-label-give") || "Give {when}";
  var giveAmount = form.getAttribute("data-label-give-amount") || "Give {amount} {when}";
  var feeNote = form.getAttribute("data-label-fee-note") || "On {amount} that adds {fee}.";

  function fill(template, values) {
    return template.replace(/\{(amount|when|fee)\}/g, function (_, name) { return values[name]; });
  }
  var bp = parseInt(form.getAttribute("data-fee-bp"), 10);
  var fixed = parseInt(form.getAttribute("data-fee-fixed"), 10);
  var currency = form.getAttribute("data-currency") || "USD";
  var lang = document.documentElement.lang || "en";
  // Amounts are in the currency's minor unit: JPY has no decimals, KWD three.
  var digits = new Intl.NumberFormat("en", { style: "currency", currency: currency })
    .resolvedOptions().maximumFractionDigits;
  var unit = Math.pow(10, digits);
  // Stripe charges three-decimal currencies in steps of 10 (as donations/money.py).
  var step = digits === 3 ? 10 : 1;

  function format(cents) {
    return new Intl.NumberFormat(lang, {
      style: "currency",
      currency: currency,
      minimumFractionDigits: cents % unit ? digits : 0,
      maximumFractionDigits: digits,
    }).format(cents / unit);
  }

  function fee(cents) {
    // The same sum as donations/money.py: (amount + fixed) / (1 - rate), rounded up.
    var total = Math.ceil(((cents + fixed) * 10000) / ((10000 - bp) * step)) * step;
    return total - cents;
  }

  function ascii(text) {
    // Arabic-Indic and Eastern Arabic-Indic digits, and the Arabic decimal separator.
    return text
      .replace(/[\u0660-\u0669]/g, function (d) { return d.charCodeAt(0) - 0x0660; })
      .replace(/[\u06f0-\u06f9]/g, function (d) { return d.charCodeAt(0) - 0x06f0; })
      .replace(/\u066b/g, ".");
  }

  function chosenCents() {
    var checked = form.querySelector("input[name=amount]:checked");
    if (!checked) return null;
    if (checked.hasAttribute("data-other")) {
      var value = parseFloat(ascii(custom.value || "").replace(/[^0-9.]/g, ""));
      return isFinite(value) && value > 0 ? Math.round(value * unit) : null;
    }
    return parseInt(checked.value, 10);
  }

  function update() {
    var cents = chosenCents();
    if (cents === null) {
      button.textContent = fill(giveWhen, { when: word });
      return;
    }
    var extra = coverFee && coverFee.checked ? fee(cents) : 0;
    button.textContent = fill(giveAmount, { amount: format(cents + extra), when: word });
    if (note) note.textContent = fill(feeNote, { amount: format(cents), fee: format(fee(cents)) });
  }

  form.addEventListener("change", update);
  if (custom) {
    custom.addEventListener("input", function () {
      var other = form.querySelector("input[name=amount][data-other]");
      if (other && custom.value) other.checked = true;
      update();
    });
  }
  form.addEventListener("submit", function () {
    // One click, one checkout: a second click while Stripe's page loads does nothing.
    setTimeout(function () { button.disabled = true; }, 0);
  });
  // Back from Stripe's page, the browser may restore this page with the button disabled.
  window.addEventListener("pageshow", function () { button.disabled = false; });
  update();
  var errors = document.getElementById("form-errors");
  if (errors) errors.focus();
})();
