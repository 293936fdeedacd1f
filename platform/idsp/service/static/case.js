// The case pages' forms work without this file. With it, a form says that it is busy and
// cannot be sent twice while the service makes a case or changes a member's access.
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target;
  const button = form.querySelector("button[type=submit]");
  const status = form.querySelector(".idsp-progress");
  if (form.dataset.sent) { event.preventDefault(); return; }
  form.dataset.sent = "1";
  if (status) {
    status.textContent = form.id === "zaak-form"
      ? "Bezig: de zaak wordt gemaakt. Dit duurt ongeveer een halve minuut…"
      : "Bezig…";
  }
  if (button) { setTimeout(() => { button.disabled = true; }, 0); }
});
