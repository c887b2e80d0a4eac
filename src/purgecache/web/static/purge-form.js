// Requesting purges: pool and cache names, checked as the API checks them, then a confirmation.

import { isSuperseded, purgeCache } from "./api.js";
import { loadCredentials } from "./credentials.js";
import { cacheNameView, el, errorView, setFieldProblem } from "./dom.js";
import { poolProblem } from "./format.js";

const byId = (id) => document.getElementById(id);
const MAX_CACHE_NAME = 4096;

/** The cache names, one per line (blank lines and surrounding spaces ignored, no repeats). */
function cacheNames(text) {
  return [...new Set(text.split("\n").map((line) => line.trim()).filter(Boolean))];
}

function cacheNamesProblem(names) {
  if (names.length === 0) return "Enter at least one cache name.";
  const long = names.find((name) => name.length > MAX_CACHE_NAME);
  return long ? `A cache name may have at most ${MAX_CACHE_NAME} characters.` : null;
}

function outcomeTitle(pool, done, total) {
  const caches = (count) => `${count} ${count === 1 ? "cache" : "caches"}`;
  if (done === total) return `Purge requested for ${caches(total)} on ${pool}.`;
  if (done === 0) return `Nothing was purged on ${pool}: the service refused.`;
  return `Purge requested for ${done} of ${caches(total)} on ${pool}; see what failed below.`;
}

function outcomeView(pool, outcomes) {
  const done = outcomes.filter((outcome) => !outcome.error).length;
  const title = outcomeTitle(pool, done, outcomes.length);
  return [
    el("h3", { tabindex: "-1", class: done === outcomes.length ? "ok" : "failed" }, title),
    el("ul", { class: "outcomes" }, outcomes.map(({ name, error }) => el("li", {},
      el("span", { class: `badge ${error ? "no" : "yes"}` }, error ? "Failed" : "Requested"), " ",
      cacheNameView(name), error && errorView(error, Boolean(loadCredentials()))))),
  ];
}

export function setupPurgeForm({ onPurged }) {
  const form = byId("purge-form");
  const poolField = byId("purge-pool");
  const namesField = byId("purge-caches");
  const confirm = byId("purge-confirm");
  const result = byId("purge-result");
  let pending = null;
  let pinned = null; // the exact cache name of a table row, sent as it is

  /** Purge exactly `name` (null: the names typed in the text area). */
  function pin(name) {
    pinned = name;
    byId("pinned-cache").hidden = name === null;
    byId("typed-caches").hidden = name !== null;
    byId("pinned-cache-name").replaceChildren(name === null ? "" : cacheNameView(name));
  }

  function review(event) {
    event.preventDefault();
    const pool = poolField.value.trim();
    const names = pinned === null ? cacheNames(namesField.value) : [pinned];
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
    byId("confirm-purge").textContent = `Purge ${names.length} ${names.length === 1 ? "cache" :
      "caches"}`;
    form.hidden = true;
    confirm.hidden = false;
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

  async function purge() {
    const { pool, names } = pending;
    const buttons = [byId("confirm-purge"), byId("confirm-back")];
    buttons.forEach((button) => (button.disabled = true));
    const outcomes = [];
    for (const name of names) {
      try {
        await purgeCache(loadCredentials(), pool, name);
        outcomes.push({ name, error: null });
      } catch (error) {
        if (isSuperseded(error)) { // signed out or in meanwhile: the page was reset
          buttons.forEach((button) => (button.disabled = false));
          return;
        }
        outcomes.push({ name, error });
      }
    }
    buttons.forEach((button) => (button.disabled = false));
    result.replaceChildren(...outcomeView(pool, outcomes));
    if (outcomes.every((outcome) => !outcome.error)) {
      namesField.value = "";
      pin(null);
    }
    hideConfirm();
    result.querySelector("h3").focus();
    onPurged(pool);
  }

  form.addEventListener("submit", review);
  byId("confirm-back").addEventListener("click", back);
  byId("unpin-cache").addEventListener("click", () => {
    pin(null);
    namesField.focus();
  });
  confirm.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !byId("confirm-back").disabled) back();
  });
  byId("confirm-purge").addEventListener("click", purge);
  return {
    /** Fill in the form (from a table row) and move the reader there; nothing is sent yet. */
    prefill(pool, cacheName) {
      hideConfirm();
      poolField.value = pool;
      pin(cacheName);
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
