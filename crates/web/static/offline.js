// The phone pages' offline queue. Forms marked `data-offline` are sent to
// the JSON API instead of posted: each action gets an idempotency key
// (crypto.randomUUID) when it is made and keeps it for good, is stored in
// IndexedDB first, and is removed only after a 2xx answer or a definitive
// refusal (a 4xx other than 401, 403 for the CSRF token, 408 and 429),
// which is shown. Anything else (no network, a server restarting, a 5xx)
// leaves it queued; the queue is replayed on page load, when the browser
// comes back online, and every 15 seconds while it is not empty. A replay
// with the same key is applied once by the server.
//
// The queue is generic: `EpigridQueue.enqueue({url, body, key, label})`
// queues any JSON POST, and `enqueue({steps: [{url, body, key}, …]})` one
// action made of several POSTs sent in order (accepting a task, then
// reporting it handled), counted as one. Blobs (photos) in `body.photos`
// are stored as Blobs and sent as base64 strings.
"use strict";
(() => {
  const DB_NAME = "epigrid-offline";
  const STORE = "actions";
  const RETRY_MS = 15000;
  const status = document.getElementById("sync-status");
  const statusText = document.getElementById("sync-text");
  const failures = document.getElementById("sync-failures");
  const meta = (name) => (document.querySelector(`meta[name="${name}"]`) || {}).content || "";
  const me = meta("epigrid-user");
  const text = (name, n) => ((status && status.dataset[name]) || "").replace("{n}", String(n));

  // ---- IndexedDB ----------------------------------------------------------
  function openDb() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = () => {
        request.result.createObjectStore(STORE, { keyPath: "id" });
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  async function tx(mode, work) {
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const t = db.transaction(STORE, mode);
      const result = work(t.objectStore(STORE));
      t.oncomplete = () => { db.close(); resolve(result && "result" in result ? result.result : undefined); };
      t.onerror = () => { db.close(); reject(t.error); };
      t.onabort = () => { db.close(); reject(t.error); };
    });
  }
  const put = (entry) => tx("readwrite", (s) => s.put(entry));
  const remove = (key) => tx("readwrite", (s) => s.delete(key));
  async function all() {
    const entries = (await tx("readonly", (s) => s.getAll())) || [];
    return entries.sort((a, b) => a.created - b.created || a.seq - b.seq);
  }

  // ---- what the page shows ----------------------------------------------
  function show(message) {
    if (!status) return;
    statusText.textContent = message;
    status.hidden = !message;
  }
  // Refusals are kept (in this browser) until the worker taps them away,
  // so one that came while another page was open is still seen.
  const FAILURES = "epigrid-offline-failures";
  function storedFailures() {
    try { return JSON.parse(localStorage.getItem(FAILURES) || "[]"); } catch (_) { return []; }
  }
  function renderFailures() {
    if (!failures) return;
    failures.textContent = "";
    const list = storedFailures().filter((f) => f.user === me);
    for (const f of list) {
      const li = document.createElement("li");
      li.textContent = f.text;
      li.title = text("dismiss", 0);
      li.addEventListener("click", () => {
        localStorage.setItem(FAILURES, JSON.stringify(storedFailures().filter((g) => g.id !== f.id)));
        renderFailures();
      });
      failures.appendChild(li);
    }
    failures.hidden = list.length === 0;
  }
  function showFailure(entry, message) {
    const list = storedFailures();
    list.push({ id: crypto.randomUUID(), user: me, text: (entry.label ? entry.label + ": " : "") + message });
    localStorage.setItem(FAILURES, JSON.stringify(list.slice(-20)));
    renderFailures();
  }
  async function refreshBadge(extra) {
    const entries = (await all()).filter((e) => e.user === me);
    const queued = new Set(entries.map((e) => e.taskId).filter(Boolean));
    for (const card of document.querySelectorAll("[data-task-id]")) {
      const label = card.querySelector(".m-queued-label");
      const waiting = queued.has(card.dataset.taskId);
      card.classList.toggle("queued", waiting);
      if (label) label.hidden = !waiting;
    }
    if (entries.length > 0) show(text("pending", entries.length));
    else show(extra || "");
    if (status) status.dataset.count = String(entries.length);
    return entries.length;
  }

  // ---- sending --------------------------------------------------------------
  function blobToBase64(blob) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).split("base64,")[1] || "");
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
  }
  async function wireBody(step) {
    const body = Object.assign({}, step.body);
    if (Array.isArray(body.photos)) {
      body.photos = await Promise.all(body.photos.map((p) => (p instanceof Blob ? blobToBase64(p) : p)));
    }
    return JSON.stringify(body);
  }

  let syncing = false;
  let timer = null;
  async function sync() {
    if (syncing) return;
    syncing = true;
    let sent = 0;
    try {
      const entries = (await all()).filter((e) => e.user === me);
      if (entries.length === 0) return;
      // The count stays in view; the notice only says it is being sent.
      if (status) status.classList.add("busy");
      // The token of the session as it is now (it may have been renewed by
      // a new login since the page was cached).
      let csrf;
      try {
        const who = await fetch("/api/v1/me", { credentials: "same-origin", cache: "no-store" });
        if (who.status === 401) { show(text("relogin", entries.length)); return; }
        if (!who.ok) return;
        const data = await who.json();
        if (data.username !== me) { show(text("otherUser", entries.length)); return; }
        csrf = data.csrf_token || meta("csrf-token");
      } catch (_) {
        return; // still offline
      }
      for (const entry of entries) {
        while (entry.steps.length > 0) {
          const step = entry.steps[0];
          let response;
          try {
            response = await fetch(step.url, {
              method: "POST",
              credentials: "same-origin",
              headers: {
                "Content-Type": "application/json",
                "X-CSRF-Token": csrf,
                "Idempotency-Key": step.key,
              },
              body: await wireBody(step),
            });
          } catch (_) {
            return; // the network went again: keep this and the rest, in order
          }
          if (response.ok) {
            entry.steps.shift();
            if (entry.steps.length > 0) await put(entry);
            continue;
          }
          const s = response.status;
          if (s === 401 || (s === 403 && (await isCsrf(response)))) { show(text("relogin", entries.length)); return; }
          if (s === 408 || s === 429 || s >= 500) return; // try again later
          // A definitive refusal: say so, and send nothing more of this
          // action (its later steps depend on this one).
          let message = String(s);
          try { message = (await response.json()).error.message || message; } catch (_) { /* keep the status */ }
          entry.steps = [];
          showFailure(entry, text("failed", 0) + " " + message);
        }
        await remove(entry.id);
        sent += 1;
      }
    } finally {
      syncing = false;
      if (status) status.classList.remove("busy");
      const left = await refreshBadge(sent > 0 ? text("synced", sent) : "");
      schedule(left);
      if (sent > 0 && left === 0) await freshen();
    }
  }
  async function isCsrf(response) {
    try { return (await response.clone().json()).error.code === "csrf.invalid"; } catch (_) { return false; }
  }
  function schedule(left) {
    if (timer) { clearTimeout(timer); timer = null; }
    if (left > 0) timer = setTimeout(sync, RETRY_MS);
  }
  // After syncing, fetch the lists afresh into the service worker's cache
  // and show them, unless the worker is typing into a form.
  async function freshen() {
    for (const path of ["/m/", location.pathname]) {
      try { await fetch(path, { headers: { "x-epigrid-fresh": "1" }, credentials: "same-origin" }); } catch (_) { return; }
    }
    const busy = [...document.querySelectorAll("textarea, input[type=file]")]
      .some((f) => (f.value || "") !== "");
    if (!busy) location.reload();
  }

  let seq = 0;
  async function enqueue(action) {
    const steps = (action.steps || [action]).map((step) => ({
      url: step.url,
      body: step.body,
      // Made once, here, and kept through every retry.
      key: step.key || crypto.randomUUID(),
    }));
    const entry = {
      id: crypto.randomUUID(),
      steps,
      label: action.label || "",
      taskId: action.taskId || "",
      user: me,
      created: Date.now(),
      seq: seq++,
    };
    await put(entry);
    await refreshBadge();
    sync();
    return entry.id;
  }

  // ---- the forms ------------------------------------------------------------
  async function onSubmit(form, event) {
    event.preventDefault();
    const kind = form.dataset.offline;
    const note = form.querySelector("textarea[name=note]");
    const files = form.querySelector("input[type=file]");
    const photos = files ? [...files.files] : [];
    if (photos.length > 3) { showFailure({}, text("tooManyPhotos", 0)); return; }
    const card = form.closest("[data-task-id]");
    const label = card ? (card.querySelector(".m-task-link") || {}).textContent || "" : "";
    const noteText = note ? note.value.trim() : "";
    const taskId = form.dataset.task || "";
    if (kind === "transition") {
      const url = `/api/v1/tasks/${taskId}/transitions`;
      const steps = [];
      // A task not yet accepted is accepted first, with the key the accept
      // button uses, so accepting twice is one step.
      if (form.dataset.acceptKey) {
        steps.push({ url, key: form.dataset.acceptKey, body: { transition: { kind: "accept" } } });
      }
      const body = { transition: { kind: form.dataset.kind } };
      if (noteText) body.note = noteText;
      if (photos.length) body.photos = photos;
      steps.push({ url, key: form.dataset.key || undefined, body });
      await enqueue({ steps, label, taskId });
    } else if (kind === "visit") {
      const body = { household_id: form.dataset.household };
      if (noteText) body.note = noteText;
      if (photos.length) body.photos = photos;
      await enqueue({ url: "/api/v1/visits", body, label: form.dataset.label || label, taskId: "" });
    }
    if (note) note.value = "";
    if (files) files.value = "";
    for (const b of form.querySelectorAll("button")) b.disabled = true;
    if (card) {
      card.classList.add("queued");
      const queued = card.querySelector(".m-queued-label");
      if (queued) queued.hidden = false;
    }
  }

  // The call button: reveal the number (audited on the server) and dial.
  async function onCall(form, event) {
    event.preventDefault();
    try {
      const response = await fetch(form.dataset.call, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": meta("csrf-token") },
      });
      if (!response.ok) { form.submit(); return; }
      const contact = await response.json();
      if (contact.phone) location.href = "tel:" + contact.phone.replace(/[^0-9+]/g, "");
    } catch (_) {
      show(text("callOffline", 0));
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const form of document.querySelectorAll("form[data-offline]")) {
      form.addEventListener("submit", (event) => onSubmit(form, event));
    }
    for (const form of document.querySelectorAll("form[data-call]")) {
      form.addEventListener("submit", (event) => onCall(form, event));
    }
    // Logging out: drop the pages kept for offline use (they hold names
    // and addresses). Queued actions stay; they belong to their account.
    for (const form of document.querySelectorAll("form[action='/logout']")) {
      form.addEventListener("submit", () => { if (window.caches) caches.delete("epigrid-m-pages"); });
    }
    renderFailures();
    refreshBadge().then(sync);
    // Keep every task page of the list for offline use.
    if (window.caches && navigator.onLine) {
      caches.open("epigrid-m-pages").then(async (cache) => {
        for (const link of document.querySelectorAll("a.m-task-link")) {
          const url = new URL(link.href, location.href).pathname;
          if (!(await cache.match(url))) {
            try {
              const response = await fetch(url, { credentials: "same-origin" });
              if (response.ok && !response.redirected) await cache.put(url, response);
            } catch (_) { return; }
          }
        }
      });
    }
  });
  window.addEventListener("online", sync);
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/m/sw.js", { scope: "/m/" }).catch(() => undefined);
  }
  window.EpigridQueue = { enqueue, sync, pending: async () => (await all()).filter((e) => e.user === me).length };
})();
