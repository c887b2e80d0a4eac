// Requesting purges: pool and cache names, checked as the API checks them, then a confirmation.

import { isSuperseded, purgeCache } from "./api.js";
import { loadCredentials } from "./credentials.js";
import { cacheNameView, el, setFieldProblem } from "./dom.js";
import { poolProblem } from "./format.js";
import { caches, outcomeView } from "./purge-outcome.js";

const byId = (id) => document.getElementById(id);
const MAX_CACHE_NAME = 4096;
const PARALLEL = 4; // purges in flight at once: quick for 60 names, gentle on the service
// How long the Purge button refuses clicks after the review appears: a double-click on "Review
// purge…" would otherwise land its second click on it (it appears under the pointer).
const SETTLE_MS = 500;

/** The cache names, one per line (blank lines and surrounding spaces ignored, no repeats). */
function cacheNames(text) {
  return [...new Set(text.split("\n").map((line) => line.trim()).filter(Boolean))];
}

function cacheNamesProblem(names) {
  if (names.length === 0) return "Enter at least one cache name.";
  const long = names.find((name) => name.length > MAX_CACHE_NAME);
  return long ? `A cache name may have at most ${MAX_CACHE_NAME} characters.` : null;
}

/** One purgeCache call per name, a few at a time: [{name, error|null}] in the names' order. */
async function purgeAll(pool, names, onProgress) {
  const outcomes = [];
  let next = 0;
  let done = 0;
  async function worker() {
    while (next < names.length) {
      const index = next++;
      try {
        await purgeCache(loadCredentials(), pool, names[index]);
        outcomes[index] = { name: names[index], error: null };
      } catch (error) {
        if (isSuperseded(error)) throw error;
        outcomes[index] = { name: names[index], error };
      }
      onProgress(++done);
    }
  }
  await Promise.all(Array.from({ length: Math.min(PARALLEL, names.length) }, worker));
  return outcomes;
}

/**
 * Keep `button` refusing clicks for a moment (aria-disabled: still focusable, so Tab reaches it
 * at once; the keyboard needs that deliberate step anyway, as focus starts on the heading).
 */
function settle(button) {
  button.setAttribute("aria-disabled", "true");
  clearTimeout(button.settling);
  button.settling = setTimeout(() => button.removeAttribute("aria-disabled"), SETTLE_MS);
}

export function setupPurgeForm({ onPurged, onCheck }) {
  const form = byId("purge-form");
  const poolField = byId("purge-pool");
  const namesField = byId("purge-caches");
  const confirm = byId("purge-confirm");
  const result = byId("purge-result");
  const progress = byId("purge-progress");
  let pending = null;
  let pinned = null; // exact cache names (a table row's, or those to retry), sent as they are

  /** Purge exactly `names` (null: the names typed in the text area). */
  function pin(names) {
    pinned = names;
    byId("pinned-cache").hidden = names === null;
    byId("typed-caches").hidden = names !== null;
    byId("pinned-cache-label").textContent = names && names.length > 1
      ? `Cache names (${names.length})` : "Cache name";
    byId("pinned-cache-name").replaceChildren(...(names || []).map((name) =>
      el("span", { class: "pinned-name" }, cacheNameView(name))));
  }

  function review() {
    const pool = poolField.value.trim();
    const names = pinned === null ? cacheNames(namesField.value) : pinned;
    setFieldProblem(poolField, poolProblem(pool));
    setFieldProblem(namesField, cacheNamesProblem(names));
    if (poolProblem(pool)) return poolField.focus();
    if (cacheNamesProblem(names)) return namesField.focus();
    pending = { pool, names };
    result.replaceChildren();
    byId("confirm-summary").textContent = `Ask every worker of ${pool} to delete ` +
      `${names.length === 1 ? "this cache" : `these ${names.length} caches`}?`;
    byId("confirm-anonymous").hidden = Boolean(loadCredentials());
    byId("confirm-names").replaceChildren(...names.map((name) => el("li", {}, cacheNameView(name))));
    byId("confirm-purge").textContent = `Purge ${caches(names.length)}`;
    form.hidden = true;
    confirm.hidden = false;
    settle(byId("confirm-purge"));
    // Not the Purge button: a second Enter (or a key held down) must not confirm.
    return byId("confirm-title").focus();
  }

  function hideConfirm() {
    confirm.hidden = true;
    form.hidden = false;
  }

  function back() {
    hideConfirm();
    (pinned === null ? namesField : poolField).focus();
  }

  function retry(names) {
    pin(names);
    review();
  }

  async function purge() {
    const { pool, names } = pending;
    const buttons = [byId("confirm-purge"), byId("confirm-back")];
    buttons.forEach((button) => (button.disabled = true));
    confirm.setAttribute("aria-busy", "true");
    const report = (done) => {
      progress.textContent = `Purging… ${done} of ${caches(names.length)} done.`;
    };
    report(0);
    let outcomes;
    try {
      outcomes = await purgeAll(pool, names, report);
    } catch (error) {
      if (isSuperseded(error)) return; // signed out or in meanwhile: the page was reset
      throw error;
    } finally {
      buttons.forEach((button) => (button.disabled = false));
      confirm.removeAttribute("aria-busy");
      progress.textContent = "";
    }
    result.replaceChildren(...outcomeView(pool, outcomes,
      { signedIn: Boolean(loadCredentials()), onRetry: retry, onCheck }));
    if (outcomes.every((outcome) => !outcome.error)) {
      namesField.value = "";
      pin(null);
    }
    hideConfirm();
    result.querySelector("h3").focus();
    onPurged(pool);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    review();
  });
  byId("confirm-back").addEventListener("click", back);
  byId("unpin-cache").addEventListener("click", () => {
    pin(null);
    namesField.focus();
  });
  confirm.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !byId("confirm-back").disabled) back();
  });
  byId("confirm-purge").addEventListener("click", (event) => {
    if (event.detail > 1 || event.currentTarget.getAttribute("aria-disabled")) return;
    purge();
  });
  return {
    /** Fill in the form (from a table row) and move the reader there; nothing is sent yet. */
    prefill(pool, cacheName) {
      hideConfirm();
      poolField.value = pool;
      pin([cacheName]);
      result.replaceChildren();
      poolField.focus();
    },
    clear() {
      hideConfirm();
      pin(null);
      result.replaceChildren();
    },
  };
}
