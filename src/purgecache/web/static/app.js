// The admin page: wires the views together. Everything goes through the public API.

import { setupAccess } from "./access.js";
import { refreshRelativeTimes } from "./dom.js";
import { setupPoolView } from "./pool.js";
import { setupPurgeForm } from "./purge-form.js";
import { setupRequests } from "./requests.js";

/** Put what the page shows in its URL: reloads, shared links, back and forward show it again. */
function remember(replace) {
  const params = new URLSearchParams();
  requests.state(params);
  poolView.state(params);
  const search = params.size ? `?${params}` : "";
  if (search === location.search) return;
  history[replace ? "replaceState" : "pushState"](null, "", `${location.pathname}${search}`);
}

const poolView = setupPoolView({ onShown: remember });
const purgeForm = setupPurgeForm({
  onPurged(pool) {
    requests.load();
    poolView.refresh(pool);
  },
  onCheck: (pool) => poolView.open(pool),
});
const requests = setupRequests({
  onShowPool: (pool) => poolView.open(pool),
  onPurgeAgain: (pool, cacheName) => purgeForm.prefill(pool, cacheName),
  onShown: remember,
});
const access = setupAccess({
  onChange() {
    const params = new URLSearchParams(location.search);
    purgeForm.clear();
    poolView.clear();
    show(params, requests.reset);
  },
});

/** Both views as `params` say; the table's state is set first (at once), as the URL is read
 * back from both. */
function show(params, showTable = requests.apply) {
  const table = showTable(params);
  poolView.apply(params);
  return table;
}

window.addEventListener("popstate", () => show(new URLSearchParams(location.search)));
setInterval(refreshRelativeTimes, 15000);
await access.start();
await show(new URLSearchParams(location.search));
document.body.dataset.ready = "true";
