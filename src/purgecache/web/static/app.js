// The admin page: wires the views together. Everything goes through the public API.

import { setupAccess } from "./access.js";
import { refreshRelativeTimes } from "./dom.js";
import { setupHistory } from "./history.js";
import { setupPoolView } from "./pool.js";
import { setupPurgeForm } from "./purge-form.js";
import { setupRequests } from "./requests.js";

const byId = (id) => document.getElementById(id);
// The main views, one shown at a time: `view=requests` in the URL, the history by default.
const VIEWS = { history: "history", requests: "requests" };
let current = "history";

/** Put what the page shows in its URL: reloads, shared links, back and forward show it again. */
function remember(replace) {
  const params = new URLSearchParams();
  if (current !== "history") params.set("view", current);
  views()[current].state(params);
  poolView.state(params);
  const search = params.size ? `?${params}` : "";
  if (search === location.search) return;
  history[replace ? "replaceState" : "pushState"](null, "", `${location.pathname}${search}`);
}

const poolView = setupPoolView({ onShown: remember });
const purgeForm = setupPurgeForm({
  onPurged(pool) {
    views()[current].load();
    poolView.refresh(pool);
  },
  onCheck: (pool) => poolView.open(pool),
});
const requests = setupRequests({
  onShowPool: (pool) => poolView.open(pool),
  onPurgeAgain: (pool, cacheName) => purgeForm.prefill(pool, cacheName),
  onShown: (replace) => current === "requests" && remember(replace),
});
const purgeHistory = setupHistory({
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
    poolView.clear();
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
  poolView.apply(params);
  return shown;
}

/** Switch views, each starting from its defaults: a step in the browser's history unless
 * `fallback` (the history is not there, so the page shows the requests in its place). */
function choose(name, fallback = false) {
  if (name === current && !fallback) return;
  const params = new URLSearchParams(name === "history" ? {} : { view: name });
  poolView.state(params);
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
