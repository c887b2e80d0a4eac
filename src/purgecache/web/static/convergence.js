// Did the workers apply a purge? The purgeStatus extension: per open purge of a pool, the
// active workers that applied it, fetched it without confirming, or were not seen since.

import { purgeStatus } from "./api.js";
import { loadCredentials } from "./credentials.js";
import { cacheNameView, el, escapedTextView, inlineTimeView, poolReadRefusal, setFieldProblem,
  timeView, typedPool } from "./dom.js";
import { poolProblem, sizeText, visibleName } from "./format.js";
import { panelReader } from "./panel.js";

const byId = (id) => document.getElementById(id);
const number = new Intl.NumberFormat();
const STATES = { fetched: "Fetched, not confirmed", notSeen: "Not seen since the purge" };
const IDENTITIES = { worker: "worker (reports)", clientId: "client id (only fetches)" };
export const FETCH_CAVEAT = "Workers that only fetch purge requests (such as generic-worker) " +
  "are counted by client id: pools or workers sharing one credential count as one worker, " +
  "and anonymous reads are not counted.";

const workers = (count) => `${number.format(count)} ${count === 1 ? "worker" : "workers"}`;

function stragglersView(purge) {
  if (purge.stragglers.length === 0) return null;
  const rows = purge.stragglers.map((straggler) => el("tr", {},
    el("td", { "data-label": "Worker" }, escapedTextView(straggler.worker)),
    el("td", { "data-label": "Counted as" }, IDENTITIES[straggler.identity] || straggler.identity),
    el("td", { "data-label": "State" }, STATES[straggler.state] || straggler.state),
    el("td", { "data-label": "Last seen" }, timeView(straggler.lastSeen))));
  const title = "Stragglers: active workers that have not applied the purge of " +
    visibleName(purge.cacheName);
  return [
    el("p", { class: "label", "aria-hidden": "true" }, title),
    el("table", { class: "requests stragglers" },
      el("caption", { class: "visually-hidden" }, title),
      el("thead", {}, el("tr", {}, ["Worker", "Counted as", "State", "Last seen"].map((name) =>
        el("th", { scope: "col" }, name)))),
      el("tbody", {}, rows)),
    purge.stragglersOmitted > 0 && el("p", { class: "note" },
      `…and ${workers(purge.stragglersOmitted)} more not listed (the service lists the first ` +
      `${number.format(purge.stragglers.length)}).`),
  ];
}

/** When the purge selected (at `selectedAt`, from the history) is older than the open one: a
 * history event's time is its purge's `before`, so the same purge has the same instant. */
function supersededView(purge, selectedAt) {
  if (!selectedAt || Date.parse(purge.before) <= Date.parse(selectedAt)) return null;
  return el("p", { class: "note superseded" }, "The purge selected (", inlineTimeView(selectedAt),
    ") was followed by a newer purge of this cache, shown here: a worker that applied the " +
    "newer one has deleted every copy the selected one asked for.");
}

function purgeView(purge, selectedAt) {
  const active = purge.activeWorkers;
  const done = active > 0 && purge.applied === active;
  return el("article", { class: "purge-status", "data-cache-name": purge.cacheName },
    el("h4", {}, "Purge of ", cacheNameView(purge.cacheName), " before ",
      timeView(purge.before)),
    supersededView(purge, selectedAt),
    el("p", { class: `tally ${done ? "converged" : ""}` },
      el("strong", {}, `applied ${number.format(purge.applied)}/${number.format(active)}`),
      active === 0 ? " — no worker of this pool was active in the window, so none can confirm "
        + "it yet." : ` active ${active === 1 ? "worker" : "workers"}${done ? " (all)" : ""}.`),
    el("ul", { class: "counts" },
      el("li", {}, `Applied: ${workers(purge.applied)}`, purge.appliedInUse > 0
        ? `, of which ${workers(purge.appliedInUse)} still had copies in use (deleted when ` +
          "the task releases them)" : ""),
      el("li", {}, `Fetched, not confirmed: ${workers(purge.fetched)}`),
      el("li", {}, `Not seen since the purge: ${workers(purge.notSeen)}`),
      el("li", {}, `Deleted so far: ${number.format(purge.instancesDeleted)} ` +
        `${purge.instancesDeleted === 1 ? "copy" : "copies"}, ${sizeText(purge.bytesFreed)} freed`)),
    stragglersView(purge));
}

function replyView(reply, cacheName, selectedAt) {
  const what = cacheName === null ? "open purges" : "open purge of this cache";
  return [
    el("h3", { tabindex: "-1" }, `Convergence on ${reply.workerPoolId}`),
    el("p", { class: "note" }, "Active workers: those heard from since ",
      inlineTimeView(reply.activeSince), ", the activity window. ", FETCH_CAVEAT),
    reply.purges.length === 0
      ? el("p", {}, `There is no ${what} on ${reply.workerPoolId}`, cacheName === null ? "."
        : [": ", cacheNameView(cacheName), "."])
      : reply.purges.map((purge) => purgeView(purge, selectedAt)),
  ];
}

function refusedView(error, pool) {
  return poolReadRefusal(error, { pool, endpoint: "purgeStatus",
    absent: "does not report convergence", reading: "Reading convergence" });
}

/** `onShown(replace)`: another purge (or none) is shown; `replace` as for the tables. */
export function setupConvergence({ onShown }) {
  const form = byId("convergence-form");
  const poolField = byId("convergence-pool");
  const cacheField = byId("convergence-cache");
  const result = byId("convergence-result");
  const reader = panelReader(result, byId("convergence-status"), "article");
  // {pool, cacheName, selectedAt}: cacheName null for every open purge of the pool, else exact
  // (as listed); selectedAt the time of the history's purge it was opened from, if it was
  let shown = null;

  function load() {
    const { pool, cacheName, selectedAt } = shown;
    byId("convergence-refresh").hidden = false;
    return reader.read(`Asking the service how far the workers of ${pool} got…`,
      async (signal) => {
        const reply = await purgeStatus(loadCredentials(), pool, cacheName ?? undefined, signal);
        result.replaceChildren(...replyView(reply, cacheName, selectedAt).flat()
          .filter(Boolean));
      }, (error) => refusedView(error, pool));
  }

  function show(pool, cacheName, replace, selectedAt = null) {
    if (shown?.pool !== pool || shown?.cacheName !== cacheName) result.replaceChildren();
    shown = { pool, cacheName, selectedAt };
    poolField.value = pool;
    cacheField.value = cacheName ?? "";
    setFieldProblem(poolField, null);
    const loaded = load();
    onShown(replace);
    return loaded;
  }

  function clear(replace) {
    reader.clear();
    shown = null;
    byId("convergence-refresh").hidden = true;
    onShown(replace);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const pool = typedPool(poolField);
    if (pool === null) return null;
    // Typed, a blank cache name means every open purge of the pool.
    return show(pool, cacheField.value === "" ? null : cacheField.value, false);
  });
  byId("convergence-refresh").addEventListener("click", () => shown && load());
  return {
    /** Show the purge of exactly `cacheName` on `pool` and move the reader there;
     * `selectedAt`: the time of the history's purge it is shown for. */
    async open(pool, cacheName, selectedAt = null) {
      await show(pool, cacheName, false, selectedAt);
      result.querySelector("h3")?.focus();
    },
    clear: () => clear(true),
    /** The purge shown as URL parameters: `converge` (pool) and `convergeCache` (exact). */
    state(params) {
      if (!shown) return;
      params.set("converge", shown.pool);
      if (shown.cacheName !== null) params.set("convergeCache", shown.cacheName);
    },
    apply(params) {
      const pool = params.get("converge");
      if (!pool || poolProblem(pool)) return clear(true);
      return show(pool, params.get("convergeCache"), true);
    },
  };
}
