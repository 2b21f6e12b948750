// The resident self-service forms (/s/…), sent with fetch so that a weak
// signal does not lose a report. Each form carries an idempotency key the
// server rendered into it; every retry sends the very same body, so the
// same key, and the server answers a repeat with the original reference
// instead of storing the report twice. Network failures, 503 (the intake
// queue is full) and 429 (too many requests from this address) are retried with exponential backoff and jitter,
// waiting at least what Retry-After asks; anything else is final and shown.
// Without this script the forms post normally and the server answers with
// a page.
"use strict";
(() => {
  const MAX_TRIES = 8;
  const MAX_DELAY_MS = 30000;
  const texts = () => (document.getElementById("s-texts") || { dataset: {} }).dataset;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function say(form, message, isError) {
    const status = form.querySelector(".s-status");
    if (!status) return;
    status.textContent = message;
    status.hidden = !message;
    status.classList.toggle("s-error", Boolean(isError));
    status.setAttribute("role", isError ? "alert" : "status");
  }

  function finished(form, data) {
    const done = document.getElementById("done");
    if (!done) return;
    done.querySelector(".s-done-text").textContent = data.message || "";
    done.querySelector(".s-ref").textContent = data.reference || "";
    // What to expect now (a fever's advice, when a grid worker will call).
    const next = done.querySelector(".s-next-lines");
    if (next) {
      next.textContent = ""; // older phones' browsers lack replaceChildren
      for (const line of data.next || []) {
        const p = document.createElement("p");
        p.className = "s-next";
        p.textContent = line;
        next.appendChild(p);
      }
    }
    done.hidden = false;
    for (const f of document.querySelectorAll("form.s-send")) f.hidden = true;
    const error = document.getElementById("form-error");
    if (error) error.hidden = true;
    for (const h of document.querySelectorAll("main h2")) h.hidden = true;
    done.scrollIntoView({ block: "start" });
  }

  async function send(form, event) {
    event.preventDefault();
    if (form.dataset.busy === "1") return; // a double tap: already on its way
    form.dataset.busy = "1";
    const buttons = form.querySelectorAll("button");
    for (const b of buttons) b.disabled = true;
    // Built once: the retries send exactly this, idempotency key included.
    const body = new URLSearchParams(new FormData(form)).toString();
    let delay = 1000;
    try {
      for (let attempt = 1; ; attempt += 1) {
        say(form, texts().sending || "…", false);
        let response = null;
        try {
          response = await fetch(form.action, {
            method: "POST",
            credentials: "same-origin",
            headers: {
              "Content-Type": "application/x-www-form-urlencoded",
              Accept: "application/json",
            },
            body,
          });
        } catch (_) {
          response = null; // no network: retry below
        }
        // 503 (queue full) and 429 (too fast from this address) are worth
        // waiting out; the same key makes the retry safe.
        if (response && response.status !== 503 && response.status !== 429) {
          let data = {};
          try { data = await response.json(); } catch (_) { data = {}; }
          if (response.ok) { say(form, "", false); finished(form, data); return; }
          if (response.status === 401 && data.location) {
            say(form, texts().expired || "", true);
            setTimeout(() => { location.href = data.location; }, 1500);
            return;
          }
          const message = (data.error && data.error.message) || response.statusText;
          say(form, message, true);
          return;
        }
        if (attempt >= MAX_TRIES) { say(form, texts().offline || "", true); return; }
        let wait = delay;
        const retryAfter = response ? Number(response.headers.get("Retry-After")) : 0;
        if (retryAfter > 0) wait = Math.max(wait, retryAfter * 1000);
        wait += Math.floor(Math.random() * 500);
        say(form, (texts().retrying || "").replace("{s}", String(Math.ceil(wait / 1000))), false);
        await sleep(wait);
        delay = Math.min(delay * 2, MAX_DELAY_MS);
      }
    } finally {
      form.dataset.busy = "";
      for (const b of buttons) b.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const form of document.querySelectorAll("form.s-send")) {
      form.addEventListener("submit", (event) => send(form, event));
    }
  });
})();
