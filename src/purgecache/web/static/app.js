// The admin page: wires the views together. Everything goes through the public API.

import { setupAccess } from "./access.js";
import { refreshRelativeTimes } from "./dom.js";
import { setupPoolView } from "./pool.js";
import { setupPurgeForm } from "./purge-form.js";
import { setupRequests } from "./requests.js";

const poolView = setupPoolView();
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
});
const access = setupAccess({
  onChange() {
    poolView.clear();
    purgeForm.clear();
    requests.reset();
  },
});

setInterval(refreshRelativeTimes, 15000);
await access.start();
await requests.load();
document.body.dataset.ready = "true";
