// The caches a pool's workers hold (the poolCaches extension): each cache name with how many
// workers hold it, their copies, total size and latest use; sorted here, in the browser.

import { poolCaches } from "./api.js";
import { loadCredentials } from "./credentials.js";
import { cacheNameView, el, inlineTimeView, poolReadRefusal, timeView, typedPool }
  from "./dom.js";
import { poolProblem, sizeText, visibleName } from "./format.js";
import { panelReader } from "./panel.js";

const byId = (id) => document.getElementById(id);
const number = new Intl.NumberFormat();
const byText = (a, b) => (a < b ? -1 : a > b ? 1 : 0); // code points: no locale folds names
// Column: header, the value sorted on, and the direction a first click sorts in.
const COLUMNS = {
  name: { label: "Cache name", value: (c) => c.cacheName, first: "asc" },
  workers: { label: "Workers", value: (c) => c.workers, first: "desc" },
  copies: { label: "Copies", value: (c) => c.instances, first: "desc" },
  size: { label: "Total size", value: (c) => c.bytes, first: "desc" },
  used: { label: "Last used", value: (c) => c.lastUsed || "", first: "desc" },
};
const DEFAULT_SORT = { key: "name", direction: "asc" }; // the service's own order

/** `sort` as a URL value ("size-desc"), and back (the default for anything else). */
const sortText = ({ key, direction }) => `${key}-${direction}`;
function readSort(text) {
  const [key, direction] = (text || "").split("-");
  return key in COLUMNS && ["asc", "desc"].includes(direction) ? { key, direction }
    : DEFAULT_SORT;
}

function sorted(caches, { key, direction }) {
  const value = COLUMNS[key].value;
  const sign = direction === "asc" ? 1 : -1;
  // Ties keep the service's order (by name): Array.prototype.sort is stable.
  return [...caches].sort((a, b) => sign * byText(value(a), value(b)));
}

function refusedView(error, pool) {
  return poolReadRefusal(error, { pool, endpoint: "poolCaches",
    absent: "keeps no cache inventory", reading: "Reading the caches of a pool" });
}

/** `onPurge(pool, cacheName)` and `onConvergence(pool, cacheName)`: a row's buttons;
 * `onShown(replace)`: another pool or order is shown. */
export function setupInventory({ onPurge, onConvergence, onShown }) {
  const form = byId("inventory-form");
  const poolField = byId("inventory-pool");
  const result = byId("inventory-result");
  const reader = panelReader(result, byId("inventory-status"), "table");
  let shown = null; // {pool, reply}
  let sort = DEFAULT_SORT;

  function header(key) {
    const column = COLUMNS[key];
    const active = sort.key === key;
    const next = active ? (sort.direction === "asc" ? "desc" : "asc") : column.first;
    return el("th", { scope: "col",
      "aria-sort": active ? (sort.direction === "asc" ? "ascending" : "descending") : null },
    el("button", { type: "button", class: "link sort", onclick() {
      sort = { key, direction: next };
      render();
      onShown(false);
      result.querySelector(`th[aria-sort] button`).focus();
    } }, column.label, active ? (sort.direction === "asc" ? " ▲" : " ▼") : ""));
  }

  function row(pool, cache) {
    const name = visibleName(cache.cacheName);
    return el("tr", {},
      el("td", { "data-label": "Cache name" }, cacheNameView(cache.cacheName)),
      el("td", { "data-label": "Workers", class: "number" }, number.format(cache.workers)),
      el("td", { "data-label": "Copies", class: "number" }, number.format(cache.instances)),
      el("td", { "data-label": "Total size", class: "number" },
        el("data", { value: String(cache.bytes) }, sizeText(cache.bytes))),
      el("td", { "data-label": "Last used" }, cache.lastUsed ? timeView(cache.lastUsed)
        : el("em", {}, "not reported")),
      el("td", { class: "action" },
        el("button", { type: "button", class: "secondary", "aria-label": `Purge ${name} on ` +
          `${pool}…`, onclick: () => onPurge(pool, cache.cacheName) }, "Purge…"),
        " ",
        el("button", { type: "button", class: "secondary", "aria-label": `Convergence of ` +
          `${name} on ${pool}`, onclick: () => onConvergence(pool, cache.cacheName) },
        "Convergence")));
  }

  function render() {
    const { pool, reply } = shown;
    const caches = reply.caches;
    const total = caches.reduce((sum, cache) => sum + cache.bytes, 0);
    const copies = caches.reduce((sum, cache) => sum + cache.instances, 0);
    result.replaceChildren(...[
      el("h3", { tabindex: "-1" }, `Caches held on ${pool}`),
      el("p", { class: "note" }, caches.length === 0
        ? "No worker active since " : `${number.format(caches.length)} cache ` +
          `${caches.length === 1 ? "name" : "names"}, ${number.format(copies)} ` +
          `${copies === 1 ? "copy" : "copies"}, ${sizeText(total)} in all, on the workers ` +
          "active since ", inlineTimeView(reply.activeSince),
      caches.length === 0 ? " has reported an inventory." : ". Sizes are as each worker " +
        "recorded them when a copy was last released."),
      caches.length > 0 && el("table", { class: "requests inventory" },
        el("caption", { class: "visually-hidden" }, `Caches held on ${pool}; the column ` +
          "headers sort"),
        el("thead", {}, el("tr", {}, Object.keys(COLUMNS).map(header),
          el("th", { scope: "col" }, el("span", { class: "visually-hidden" }, "Actions")))),
        el("tbody", {}, sorted(caches, sort).map((cache) => row(pool, cache)))),
    ].filter(Boolean));
  }

  function load(pool, replace) {
    if (shown?.pool !== pool) result.replaceChildren();
    shown = { pool, reply: shown?.pool === pool ? shown.reply : null };
    poolField.value = pool;
    byId("inventory-refresh").hidden = false;
    onShown(replace);
    return reader.read(`Asking the service which caches the workers of ${pool} hold…`,
      async (signal) => {
        shown.reply = await poolCaches(loadCredentials(), pool, signal);
        render();
      }, (error) => refusedView(error, pool));
  }

  function clear(replace) {
    reader.clear();
    shown = null;
    byId("inventory-refresh").hidden = true;
    onShown(replace);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const pool = typedPool(poolField);
    if (pool === null) return null;
    return load(pool, false);
  });
  byId("inventory-refresh").addEventListener("click", () => shown && load(shown.pool, true));
  return {
    refresh(pool) {
      if (shown && shown.pool === pool) load(pool, true);
    },
    clear: () => clear(true),
    /** The pool shown and the order, as URL parameters `caches` and `cachesSort`. */
    state(params) {
      if (!shown) return;
      params.set("caches", shown.pool);
      if (sortText(sort) !== sortText(DEFAULT_SORT)) params.set("cachesSort", sortText(sort));
    },
    apply(params) {
      sort = readSort(params.get("cachesSort"));
      const pool = params.get("caches");
      if (!pool || poolProblem(pool)) return clear(true);
      return load(pool, true);
    },
  };
}
