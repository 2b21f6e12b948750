// Health reports at the door (/m/households/{id}): each form becomes a JSON
// POST to the staff health-report endpoint, queued by offline.js
// (window.EpigridQueue) with the idempotency key the server rendered into
// the form. The same key goes in the body (the endpoint reads it there)
// and as the queue's key, so a replay after lost signal is stored once.
"use strict";
(() => {
  function entryOf(form) {
    const data = new FormData(form);
    const temperature = (data.get("temperature") || "").toString().trim();
    return {
      resident_id: data.get("resident_id"),
      temperature,
      symptoms: data.getAll("symptoms"),
      whereabouts: data.get("whereabouts") ? "away" : "at_home",
    };
  }

  async function onSubmit(form, event) {
    if (!window.EpigridQueue) return; // no queue: post the form normally
    event.preventDefault();
    const data = new FormData(form);
    const key = data.get("idempotency_key").toString();
    const body = { idempotency_key: key };
    if (data.get("whole_household_normal")) body.whole_household_normal = true;
    else body.entries = [entryOf(form)];
    await window.EpigridQueue.enqueue({
      url: `/api/v1/households/${form.dataset.health}/health-reports`,
      body,
      key,
      label: form.dataset.label || "",
    });
    for (const b of form.querySelectorAll("button")) b.disabled = true;
    const queued = document.getElementById("health-queued");
    if (queued) queued.hidden = false;
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const form of document.querySelectorAll("form[data-health]")) {
      form.addEventListener("submit", (event) => onSubmit(form, event));
    }
  });
})();
