// The purge history (this service's listPurgeHistory extension): every accepted purge, newest
// first, filtered and counted by the server, paged with its continuation tokens.

import { isSuperseded, listPurgeHistory } from "./api.js";
import { loadCredentials } from "./credentials.js";
import { el, errorView, escapedTextView, cacheNameView, inlineTimeView, setFieldProblem,
  timeView }
  from "./dom.js";
import { parseSince, poolProblem, visibleName } from "./format.js";

const byId = (id) => document.getElementById(id);
const pagerButtons = (selector) => document.querySelectorAll(`#history .pager ${selector}`);
const number = new Intl.NumberFormat();
const PAGE_SIZES = ["10", "25", "50", "100"];
const DEFAULT_PAGE_SIZE = "25";
// Filter field, listPurgeHistory query key and URL parameter of each filter.
const FILTERS = [
  ["history-pool", "workerPoolId", "pool"],
  ["history-cache", "cacheName", "cache"],
  ["history-client", "clientId", "client"],
  ["history-since", "since", "from"],
  ["history-until", "until", "until"],
];
const TIMES = new Set(["since", "until"]);
const SPELLINGS = { "%2F": "signed, pool as %2F", slash: "signed, pool with a slash" };

/** A link only when it is http(s); anything else is text, as typed (escaped). */
export function linkView(link) {
  let url = null;
  try {
    url = new URL(link);
  } catch {
    url = null;
  }
  if (!url || !["http:", "https:"].includes(url.protocol)) return escapedTextView(link);
  return el("a", { href: url.href, target: "_blank", rel: "noopener noreferrer" },
    visibleName(link));
}

function originView(event) {
  return el("span", { class: "origin" },
    el("span", {}, event.sourceIp || "address not recorded"),
    el("span", {}, SPELLINGS[event.signedSpelling] || "unsigned"),
    event.userAgent !== undefined &&
      el("span", { class: "user-agent" }, "User-Agent: ", escapedTextView(event.userAgent)));
}

/** The patterns of the selector purge an event came from (a plain purge has none). */
function selectorView({ workerPoolPattern, cacheNamePattern }) {
  return el("span", { class: "selector-line" }, "by pattern: pool ",
    escapedTextView(workerPoolPattern), ", cache ", escapedTextView(cacheNamePattern));
}

function forbidden(error) {
  return el("div", {}, el("p", { class: "problem" }, "Reading the purge history needs the " +
    "scope ", el("code", {}, "purge-cache:history::*"), " (or ",
  el("code", {}, "purge-cache:history::<pool>"), " with a pool filter), which ",
  loadCredentials() ? "these credentials do not hold." : "anonymous access does not have here.",
  " The open purge requests may still be readable."), errorView(error,
    Boolean(loadCredentials())));
}

/** Whether workers are still served the purge, or why and when that ended. */
function servedView(event) {
  if (event.endReason === undefined) return el("span", { class: "served" }, "open");
  const why = END_REASONS[event.endReason] ?? event.endReason;
  return el("span", { class: "served ended" }, why,
    event.ended !== undefined ? el("span", { class: "time-line" }, inlineTimeView(event.ended))
      : "");
}

/** Marks a purge kept past its retention until every active worker applied it: why it may be
 * served long after the others. */
function policyView() {
  return el("span", { class: "policy-line" }, "until applied");
}

const END_REASONS = {
  converged: "ended: applied everywhere",
  expired: "ended: expired",
  superseded: "ended: superseded",
  cancelled: "ended: cancelled",
};

/**
 * `onShown(replace)`: another state is shown (as for the table); `onUnavailable(error)`: the
 * service has no purge history (404), so the page shows something else;
 * `onConvergence(pool, cacheName, time)`: a row's "Convergence" button.
 */
export function setupHistory({ onShown, onUnavailable, onConvergence }) {
  const form = byId("history-filter");
  const rows = byId("history-rows");
  const status = byId("history-status");
  const pageSize = byId("history-page-size");
  const view = { filters: {}, token: undefined, earlier: [], next: undefined, selected: null };
  let loading = null;

  function select(eventId) {
    view.selected = view.selected === eventId ? null : eventId;
    for (const row of rows.children) {
      const chosen = row.dataset.eventId === view.selected;
      row.classList.toggle("selected", chosen);
      row.querySelector(".select").setAttribute("aria-pressed", String(chosen));
    }
    onShown(false);
  }

  function row(event) {
    const pool = event.workerPoolId;
    const chosen = event.eventId === view.selected;
    return el("tr", { "data-event-id": event.eventId, class: chosen ? "selected" : null },
      el("td", { "data-label": "Time" }, timeView(event.time), el("button", { type: "button",
        class: "link select", "aria-pressed": String(chosen), onclick: () => select(event.eventId),
        "aria-label": `Select the purge of ${visibleName(event.cacheName)} on ${pool} at ` +
          event.time }, "Select"), el("button", { type: "button", class: "link convergence",
        "aria-label": `Convergence of ${visibleName(event.cacheName)} on ${pool} at ${event.time}`,
        onclick: () => onConvergence(pool, event.cacheName, event.time) }, "Convergence")),
      el("td", { "data-label": "Worker pool" }, pool),
      el("td", { "data-label": "Cache name" }, cacheNameView(event.cacheName),
        event.selector && selectorView(event.selector)),
      el("td", { "data-label": "Purged by" },
        event.clientId !== undefined ? escapedTextView(event.clientId) : el("em", {}, "anonymous"),
        originView(event)),
      el("td", { "data-label": "Reason" },
        event.reason !== undefined ? escapedTextView(event.reason) : "",
        event.link !== undefined && el("span", { class: "link-line" }, linkView(event.link))),
      el("td", { "data-label": "Served" }, servedView(event), event.untilApplied && policyView()));
  }

  function show(page, replace) {
    rows.replaceChildren(...page.events.map(row));
    byId("history-table").hidden = page.events.length === 0;
    const first = view.earlier.length * Number(pageSize.value) + 1;
    const last = first + page.events.length - 1;
    const filtered = Object.keys(view.filters).length > 0;
    status.textContent = page.events.length === 0
      ? (filtered ? `No purge matches these filters (${number.format(page.total)}).`
        : "No purges have been recorded yet.")
      : `Purges ${number.format(first)}–${number.format(last)} of ${number.format(page.total)}` +
        `${filtered ? " matching" : ""}, newest first.`;
    pagerButtons(".previous-page").forEach((button) => (button.disabled = !view.earlier.length));
    pagerButtons(".next-page").forEach((button) => (button.disabled = !view.next));
    if (document.activeElement && document.activeElement.disabled) status.focus();
    onShown(replace);
  }

  /** Show the page at `target` ({token, earlier, replace}); a newer load cancels this one. */
  async function load(target = { token: view.token, earlier: view.earlier, replace: true }) {
    loading?.abort();
    const controller = new AbortController();
    loading = controller;
    byId("history-error").replaceChildren();
    byId("history").setAttribute("aria-busy", "true");
    status.textContent = "Reading the purge history…";
    try {
      const page = await listPurgeHistory(loadCredentials(), { filters: view.filters,
        limit: Number(pageSize.value), continuationToken: target.token,
        signal: controller.signal });
      Object.assign(view, { token: target.token, earlier: target.earlier,
        next: page.continuationToken });
      show(page, target.replace);
    } catch (error) {
      if (isSuperseded(error)) return;
      if (error.status === 404) return onUnavailable(error);
      status.textContent = rows.children.length
        ? "Could not read the purge history again; the rows below are from the last read." : "";
      byId("history-error").replaceChildren(error.status === 403 ? forbidden(error)
        : errorView(error, Boolean(loadCredentials())));
    } finally {
      if (loading === controller) byId("history").removeAttribute("aria-busy");
    }
  }

  function restart() {
    return load({ token: undefined, earlier: [], replace: false });
  }

  /** The filters typed, or null (with the problems shown) when one cannot be read. */
  function typedFilters() {
    const filters = {};
    let problem = null;
    for (const [id, key] of FILTERS) {
      const field = byId(id);
      const text = TIMES.has(key) || key === "workerPoolId" ? field.value.trim() : field.value;
      const read = !text ? {} : key === "workerPoolId" ? { problem: poolProblem(text) }
        : TIMES.has(key) ? parseSince(text) : {};
      setFieldProblem(field, read.problem);
      if (read.problem) problem ??= field;
      else if (text) filters[key] = read.instant || text;
    }
    problem?.focus();
    return problem ? null : filters;
  }

  /** Stop reading (the view is not shown) and show nothing. */
  function idle() {
    loading?.abort();
    byId("history").removeAttribute("aria-busy");
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const filters = typedFilters();
    if (!filters) return;
    view.filters = filters;
    view.selected = null;
    restart();
  });
  form.addEventListener("reset", () => {
    FILTERS.forEach(([id]) => setFieldProblem(byId(id), null));
    view.filters = {};
    view.selected = null;
    restart();
  });
  pageSize.addEventListener("change", restart);
  pagerButtons(".previous-page").forEach((button) => button.addEventListener("click",
    () => load({ token: view.earlier.at(-1), earlier: view.earlier.slice(0, -1),
      replace: false })));
  pagerButtons(".next-page").forEach((button) => button.addEventListener("click",
    () => load({ token: view.next, earlier: [...view.earlier, view.token], replace: false })));
  byId("history-refresh").addEventListener("click", () => load());

  return {
    load,
    idle,
    /** The state shown, as URL parameters (none for the defaults). */
    state(params) {
      for (const [, key, name] of FILTERS) {
        if (view.filters[key] !== undefined) params.set(name, view.filters[key]);
      }
      if (view.token) {
        [...view.earlier.slice(1), view.token].forEach((token) => params.append("after", token));
      }
      if (pageSize.value !== DEFAULT_PAGE_SIZE) params.set("rows", pageSize.value);
      if (view.selected) params.set("event", view.selected);
    },
    /** Show the state that URL parameters describe. */
    apply(params) {
      const size = params.get("rows");
      pageSize.value = PAGE_SIZES.includes(size) ? size : DEFAULT_PAGE_SIZE;
      view.filters = {};
      for (const [id, key, name] of FILTERS) {
        const value = params.get(name) || "";
        byId(id).value = value;
        setFieldProblem(byId(id), null);
        if (value) view.filters[key] = value;
      }
      view.selected = params.get("event");
      const tokens = params.getAll("after");
      const earlier = tokens.length ? [undefined, ...tokens.slice(0, -1)] : [];
      return load({ token: tokens.at(-1), earlier, replace: true });
    },
    /** Start over with other credentials: nothing read with the old ones stays on screen. */
    reset(params) {
      rows.replaceChildren();
      byId("history-table").hidden = true;
      status.textContent = "";
      return this.apply(params);
    },
  };
}
