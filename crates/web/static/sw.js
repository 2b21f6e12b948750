// The phone pages' service worker (scope /m/). Pages: stale-while-revalidate,
// so a page opens at once, also with no signal, and is refreshed behind it.
// The assets in PRECACHE: cache first (their digest is the worker's version,
// so a binary with changed assets brings a new worker and a new cache);
// other static assets: stale-while-revalidate. The API is never cached: actions go through
// the queue in offline.js, and answers must be current.
"use strict";
const VERSION = "__VERSION__";
const PAGES = "epigrid-m-pages";
const ASSETS = "epigrid-m-assets-" + VERSION;
const PRECACHE = ["/static/app.css", "/static/mobile.css", "/static/offline.js"];
const FALLBACK = "/m/offline";

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const assets = await caches.open(ASSETS);
    await assets.addAll(PRECACHE);
    // The fallback page and the list, so the first visit is enough.
    const pages = await caches.open(PAGES);
    for (const path of [FALLBACK, "/m/"]) {
      try {
        const response = await fetch(path, { credentials: "same-origin" });
        if (response.ok && !response.redirected) await pages.put(path, response);
      } catch (_) { /* offline while installing: kept at the next visit */ }
    }
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("epigrid-m-assets-") && name !== ASSETS) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

function isPage(url) {
  return url.pathname.startsWith("/m/") && url.pathname !== "/m/sw.js";
}

async function staleWhileRevalidate(event, cacheName = PAGES) {
  const cache = await caches.open(cacheName);
  const key = new URL(event.request.url);
  key.hash = "";
  const cached = await cache.match(key.href);
  const network = fetch(event.request).then(async (response) => {
    // A redirect (to the login page) or an error page is not the page.
    if (response.ok && !response.redirected) await cache.put(key.href, response.clone());
    return response;
  });
  if (cached) {
    event.waitUntil(network.catch(() => undefined));
    return cached;
  }
  try {
    return await network;
  } catch (error) {
    const fallback = await cache.match(FALLBACK);
    if (fallback) return fallback;
    throw error;
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(ASSETS);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (PRECACHE.includes(url.pathname)) {
    event.respondWith(cacheFirst(request));
  } else if (url.pathname.startsWith("/static/")) {
    // Assets not in the version digest (another page's script): kept for
    // offline use, but refreshed behind, so a new binary's copy arrives.
    event.respondWith(staleWhileRevalidate(event, ASSETS));
  } else if (isPage(url) && request.headers.get("x-epigrid-fresh")) {
    // offline.js asks for a fresh copy after syncing: network, then keep it.
    event.respondWith(fetch(request).then(async (response) => {
      if (response.ok && !response.redirected) {
        const cache = await caches.open(PAGES);
        await cache.put(url.origin + url.pathname + url.search, response.clone());
      }
      return response;
    }));
  } else if (isPage(url)) {
    event.respondWith(staleWhileRevalidate(event));
  }
});
