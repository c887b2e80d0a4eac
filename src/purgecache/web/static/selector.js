// Purging by patterns (the createSelectorPurge extension): a dry run shows every (pool, cache)
// pair the patterns match today, with workers and sizes; only a deliberate confirmation sends
// the purge, with the review's digest, so the service refuses it (409) if the set changed.

import { createSelectorPurge, isSuperseded } from "./api.js";
import { loadCredentials } from "./credentials.js";
import { cacheNameView, el, errorView, escapedTextView, timeView } from "./dom.js";
import { messageBlocks, sizeText } from "./format.js";
import { caches } from "./purge-outcome.js";

const byId = (id) => document.getElementById(id);
const number = new Intl.NumberFormat();
const SHOWN_PAIRS = 1000; // rows of a review drawn at most; the totals count them all
const KNOWN_FROM = { inventory: "a worker's inventory", history: "the purge history",
  requests: "an open purge request" };
const pools = (count) => `${number.format(count)} ${count === 1 ? "pool" : "pools"}`;
const workers = (count) => `${number.format(count)} ${count === 1 ? "worker" : "workers"}`;

/** The scopes a 403 names as missing: the strings of the message's first scope block. */
export function missingScopes(message) {
  const block = messageBlocks(message).find((part) => part.code);
  if (!block) return [];
  const quoted = [...block.text.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => JSON.parse(m[0]));
  const scopes = quoted.length ? quoted : block.text.split("\n").map((line) => line.trim());
  return scopes.filter((scope) => scope.startsWith("purge-cache:"));
}

/** Missing scopes grouped as an operator asks for them: the selector's own, reading each pool,
 * purging each pair (by pool), and any other. */
export function groupScopes(scopes, { workerPoolPattern, cacheNamePattern }) {
  const selector = `purge-cache:${workerPoolPattern}:${cacheNamePattern}`;
  const groups = { selector: [], read: [], purge: new Map(), other: [] };
  for (const scope of scopes) {
    if (scope === selector) groups.selector.push(scope);
    else if (scope.startsWith("purge-cache:history::")) groups.read.push(scope);
    else if (/^purge-cache:[^:/]+\/[^:/]+:/.test(scope)) {
      const pool = scope.slice("purge-cache:".length).split(":")[0];
      if (!groups.purge.has(pool)) groups.purge.set(pool, []);
      groups.purge.get(pool).push(scope);
    } else groups.other.push(scope);
  }
  return groups;
}

function scopeList(scopes) {
  return el("ul", { class: "names" }, scopes.map((scope) => el("li", {}, escapedTextView(scope))));
}

function forbiddenView(error, selector) {
  const groups = groupScopes(missingScopes(error.message), selector);
  const count = groups.selector.length + groups.read.length + groups.other.length +
    [...groups.purge.values()].reduce((sum, list) => sum + list.length, 0);
  if (count === 0) return errorView(error, Boolean(loadCredentials()));
  const section = (title, scopes) => scopes.length > 0 && [el("h4", {}, title), scopeList(scopes)];
  return el("div", { class: "error", role: "alert" },
    el("p", { class: "error-title" }, el("strong", {}, `Not allowed: ${count} missing ` +
      `${count === 1 ? "scope" : "scopes"}`), ` (${error.status} ${error.code})`),
    section("The selector itself, as written", groups.selector),
    section("Reading the matched pools (to expand the selector)", groups.read),
    groups.purge.size > 0 && [el("h4", {}, "Purging each matched cache"),
      ...[...groups.purge].map(([pool, scopes]) => el("details", { open: true },
        el("summary", {}, `${pool}: ${scopes.length} ${scopes.length === 1 ? "scope" : "scopes"}`),
        scopeList(scopes)))],
    section("Other", groups.other),
    el("details", {}, el("summary", {}, "The service's message"),
      errorView(error, Boolean(loadCredentials()), { alert: false })));
}

function pairsTable(pairs) {
  const rows = pairs.slice(0, SHOWN_PAIRS).map((pair) => el("tr", {},
    el("td", { "data-label": "Worker pool" }, pair.workerPoolId),
    el("td", { "data-label": "Cache name" }, cacheNameView(pair.cacheName)),
    el("td", { "data-label": "Workers", class: "number" }, number.format(pair.workers)),
    el("td", { "data-label": "Size", class: "number" },
      el("data", { value: String(pair.bytes) }, sizeText(pair.bytes))),
    el("td", { "data-label": "Known from" },
      pair.knownFrom.map((source) => KNOWN_FROM[source] || source).join(", "))));
  return [
    el("table", { class: "requests pairs" },
      el("caption", { class: "visually-hidden" }, "The caches the patterns match"),
      el("thead", {}, el("tr", {}, ["Worker pool", "Cache name", "Workers", "Size",
        "Known from"].map((name) => el("th", { scope: "col" }, name)))),
      el("tbody", {}, rows)),
    pairs.length > SHOWN_PAIRS && el("p", { class: "note" }, `The first ` +
      `${number.format(SHOWN_PAIRS)} of ${number.format(pairs.length)} are listed; the ` +
      "totals above count them all."),
  ];
}

export function setupSelectorPurge({ onPurged }) {
  const form = byId("selector-form");
  const review = byId("selector-review");
  const result = byId("selector-result");
  const progress = byId("selector-progress");
  let reviewed = null; // {selector, answer}: the dry run on screen
  let loading = null;
  let available = true; // until the service answers 404: it has no selector purges

  function typed() {
    const fields = form.elements;
    const selector = { workerPoolPattern: fields.workerPoolPattern.value.trim(),
      cacheNamePattern: fields.cacheNamePattern.value };
    const reason = fields.reason.value.trim();
    const link = fields.link.value.trim();
    return { ...selector, ...(reason ? { reason } : {}), ...(link ? { link } : {}) };
  }

  function busy(text) {
    progress.textContent = text;
    [...form.querySelectorAll("button"), ...review.querySelectorAll("button")]
      .forEach((button) => (button.disabled = Boolean(text)));
    if (text) byId("selector").setAttribute("aria-busy", "true");
    else byId("selector").removeAttribute("aria-busy");
  }

  /** A call of createSelectorPurge; a newer one (or signing out) cancels it. */
  async function send(body) {
    loading?.abort();
    const controller = new AbortController();
    loading = controller;
    try {
      return await createSelectorPurge(loadCredentials(), body, controller.signal);
    } finally {
      if (loading === controller) busy("");
    }
  }

  function unavailable(error) {
    available = false;
    form.hidden = true;
    review.hidden = true;
    byId("selector-note").textContent = "This service has no purges by pattern (its " +
      `createSelectorPurge extension answered ${error.status} ${error.code}: a Taskcluster ` +
      "deployment or an older purgecache). Purge exact cache names above instead.";
  }

  function failed(error, selector) {
    if (error.status === 404) return unavailable(error);
    const signedIn = Boolean(loadCredentials());
    result.replaceChildren(error.status === 403 ? forbiddenView(error, selector)
      : error.status === 400 ? el("div", { class: "error", role: "alert" },
        el("p", { class: "error-title" }, el("strong", {},
          "The service refused this purge by pattern (a pattern, the reason or the link)"),
          ` (${error.status} ${error.code})`),
        ...messageBlocks(error.message).map((block) => block.code
          ? el("pre", {}, el("code", {}, block.text)) : el("p", {}, block.text)))
        : errorView(error, signedIn));
  }

  function showReview(selector, answer) {
    reviewed = { selector, answer };
    const { totals } = answer;
    const nothing = answer.pairs.length === 0;
    byId("selector-review-title").textContent = nothing
      ? "Nothing matches these patterns today: there is nothing to purge."
      : `${caches(totals.pairs)} on ${pools(totals.pools)} match: ${workers(totals.workers)} ` +
        `hold ${sizeText(totals.bytes)}.`;
    byId("selector-review-patterns").replaceChildren("Pool pattern ",
      escapedTextView(selector.workerPoolPattern), ", cache name pattern ",
      escapedTextView(selector.cacheNamePattern));
    byId("selector-pairs").replaceChildren(...(nothing ? [] : pairsTable(answer.pairs))
      .filter(Boolean));
    byId("selector-threshold").textContent = answer.pairs.length > answer.confirmThreshold
      ? `More than ${number.format(answer.confirmThreshold)} caches: the service applies this ` +
        "only with this review's digest, and refuses it if the matches change meanwhile."
      : "The purge is sent with this review's digest: if the matches change meanwhile, the " +
        "service refuses it and you review again.";
    byId("selector-digest").textContent = answer.digest;
    const confirm = byId("selector-confirm");
    confirm.hidden = nothing;
    confirm.textContent = `Purge ${caches(totals.pairs)}`;
    form.hidden = true;
    review.hidden = false;
    // The heading, not the Purge button: a second Enter must not confirm.
    byId("selector-review-title").focus();
  }

  async function dryRun(selector) {
    busy("Asking the service what these patterns match…");
    try {
      showReview(selector, await send({ ...selector, dryRun: true }));
    } catch (error) {
      if (isSuperseded(error)) return;
      failed(error, selector);
    }
  }

  async function apply() {
    const { selector, answer } = reviewed;
    busy(`Purging ${caches(answer.totals.pairs)}…`);
    try {
      const applied = await send({ ...selector, dryRun: false, digest: answer.digest });
      result.replaceChildren(el("h3", { tabindex: "-1", class: "ok" }, `Purge requested for ` +
        `${caches(applied.totals.pairs)} on ${pools(applied.totals.pools)}.`),
      applied.before && el("p", {}, "Workers delete their copies made before ",
        timeView(applied.before), "."));
      back(false);
      result.querySelector("h3").focus();
      onPurged(applied.pairs.map((pair) => pair.workerPoolId));
    } catch (error) {
      if (isSuperseded(error)) return;
      if (error.status !== 409) return failed(error, selector);
      result.replaceChildren(el("p", { class: "problem", role: "alert" }, "The set of " +
        "matching caches changed since your review, so nothing was purged: review again " +
        "below."));
      await dryRun(selector);
    }
  }

  function back(focus = true) {
    reviewed = null;
    review.hidden = true;
    form.hidden = false;
    if (focus) form.elements.workerPoolPattern.focus();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    result.replaceChildren();
    dryRun(typed());
  });
  byId("selector-confirm").addEventListener("click", apply);
  byId("selector-back").addEventListener("click", () => back());
  review.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !byId("selector-back").disabled) back();
  });
  return {
    clear() {
      loading?.abort();
      busy("");
      result.replaceChildren();
      if (available) back(false);
    },
  };
}
