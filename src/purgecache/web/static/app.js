// The admin page: wires the views together. Everything goes through the public API.

import { setupAccess } from "./access.js";
import { setupConvergence } from "./convergence.js";
import { refreshRelativeTimes } from "./dom.js";
import { setupHistory } from "./history.js";
import { setupInventory } from "./inventory.js";
import { setupPoolView } from "./pool.js";
import { setupPurgeForm } from "./purge-form.js";
import { setupRequests } from "./requests.js";
import { setupSelectorPurge } from "./selector.js";

const byId = (id) => document.getElementById(id);
// The main views, one shown at a time: `view=requests` in the URL, the history by default.
const VIEWS = { history: "history", requests: "requests" };
let current = "history";

/** Put what the page shows in its URL: reloads, shared links, back and forward show it again. */
function remember(replace) {
  const params = new URLSearchParams();
  if (current !== "history") params.set("view", current);
  views()[current].state(params);
  panels().forEach((panel) => panel.state(params));
  const search = params.size ? `?${params}` : "";
  if (search === location.search) return;
  history[replace ? "replaceState" : "pushState"](null, "", `${location.pathname}${search}`);
}

const poolView = setupPoolView({ onShown: remember });
const convergence = setupConvergence({ onShown: remember });
/** What a purge changed: the main view, and the pool shown below if it is one of `pools`. */
function purged(...pools) {
  views()[current].load();
  pools.forEach((pool) => {
    poolView.refresh(pool);
    inventory.refresh(pool);
  });
}
const purgeForm = setupPurgeForm({
  onPurged: purged,
  onCheck: (pool) => poolView.open(pool),
});
const inventory = setupInventory({
  onPurge: (pool, cacheName) => purgeForm.prefill(pool, cacheName),
  onConvergence: convergence.open,
  onShown: remember,
});
const selectorPurge = setupSelectorPurge({ onPurged: (pools) => purged(...new Set(pools)) });
// The panels below the main view, each with its own state in the URL.
const panels = () => [poolView, convergence, inventory];
const requests = setupRequests({
  onShowPool: (pool) => poolView.open(pool),
  onPurgeAgain: (pool, cacheName) => purgeForm.prefill(pool, cacheName),
  onConvergence: convergence.open,
  onShown: (replace) => current === "requests" && remember(replace),
});
const purgeHistory = setupHistory({
  onConvergence: convergence.open,
  onShown: (replace) => current === "history" && remember(replace),
  onUnavailable(error) {
    byId("view-note").textContent = "This service has no purge history (its listPurgeHistory " +
      `extension answered ${error.status} ${error.code}: a Taskcluster deployment or an older ` +
      "purgecache), so the page shows the open purge requests instead.";
    byId("show-history").disabled = true;
    choose("requests", true);
  },
});
const views = () => ({ history: purgeHistory, requests });
const access = setupAccess({
  onChange() {
    const params = new URLSearchParams(location.search); // before clearing rewrites it
    purgeForm.clear();
    selectorPurge.clear();
    panels().forEach((panel) => panel.clear());
    show(params, true);
  },
});

/** The view (and pool view) as `params` say; `reset` drops what was read before. The view's
 * state is set first (at once), as the URL is read back from both. */
function show(params, reset = false) {
  const wanted = VIEWS[params.get("view")] || "history";
  current = byId("show-history").disabled ? "requests" : wanted;
  for (const name of Object.keys(VIEWS)) {
    byId(name).hidden = name !== current;
    byId(`show-${name}`).setAttribute("aria-pressed", String(name === current));
    if (name !== current) views()[name].idle?.();
  }
  const view = views()[current];
  const shown = reset ? view.reset(params) : view.apply(params);
  panels().forEach((panel) => panel.apply(params));
  return shown;
}

/** Switch views, each starting from its defaults: a step in the browser's history unless
 * `fallback` (the history is not there, so the page shows the requests in its place). */
function choose(name, fallback = false) {
  if (name === current && !fallback) return;
  const params = new URLSearchParams(name === "history" ? {} : { view: name });
  panels().forEach((panel) => panel.state(params));
  const url = `${location.pathname}${params.size ? `?${params}` : ""}`;
  history[fallback ? "replaceState" : "pushState"](null, "", url);
  show(params, fallback);
}

byId("show-history").addEventListener("click", () => choose("history"));
byId("show-requests").addEventListener("click", () => choose("requests"));
window.addEventListener("popstate", () => show(new URLSearchParams(location.search)));
setInterval(refreshRelativeTimes, 15000);
await access.start();
await show(new URLSearchParams(location.search));
document.body.dataset.ready = "true";
