// The table of open purge requests. Without a filter or an order of its own it pages through
// the server's pages with continuation tokens; otherwise it searches every request in the
// browser (search.js) and pages the matches here.

import { allPurgeRequests, isSuperseded } from "./api.js";
import { loadCredentials } from "./credentials.js";
import { cacheNameView, el, errorView, timeView } from "./dom.js";
import { visibleName } from "./format.js";
import { ORDERS, READ_CAP, poolOf, readAll, search } from "./search.js";

const byId = (id) => document.getElementById(id);
// The pager is above and below the table; both say and do the same.
const pagerButtons = (selector) => document.querySelectorAll(`#requests .pager ${selector}`);
const number = new Intl.NumberFormat();
const PAGE_SIZES = ["10", "25", "50", "100"];
const DEFAULT_PAGE_SIZE = "25";

/**
 * `onShown(replace)`: the table now shows another state (filters, order, page, rows per
 * page); `replace` when that is not a step of its own in the browser's history.
 * `onShowPool`, `onPurgeAgain` and `onConvergence` (pool, cache name): a row's buttons.
 */
export function setupRequests({ onShowPool, onPurgeAgain, onConvergence, onShown }) {
  const filterForm = byId("filter");
  const rows = byId("requests-rows");
  const status = byId("requests-status");
  const pageSize = byId("page-size");
  byId("read-cap").textContent = number.format(READ_CAP);
  // `search`: {pool, cache, order} when searching in the browser, null when paging the server's
  const view = { search: null, matches: [], offset: 0, token: undefined, earlier: [],
    next: undefined, total: 0, complete: true };
  let loading = null;

  function row(request) {
    const pool = poolOf(request);
    return el("tr", {},
      el("td", { "data-label": "Worker pool" }, el("button", { type: "button", class: "link",
        "aria-label": `${pool}: show what its workers receive`, onclick: () => onShowPool(pool) },
      pool)),
      el("td", { "data-label": "Cache name" }, cacheNameView(request.cacheName)),
      el("td", { "data-label": "Before" }, timeView(request.before)),
      el("td", { class: "action" }, el("button", { type: "button", class: "secondary",
        "aria-label": `Purge again: ${visibleName(request.cacheName)} on ${pool}`,
        onclick: () => onPurgeAgain(pool, request.cacheName) }, "Purge again…"), " ",
      el("button", { type: "button", class: "secondary",
        "aria-label": `Convergence of ${visibleName(request.cacheName)} on ${pool}`,
        onclick: () => onConvergence(pool, request.cacheName) }, "Convergence")));
  }

  function show(requests, description, hasEarlier, hasNext, replace) {
    rows.replaceChildren(...requests.map(row));
    byId("requests-table").hidden = requests.length === 0;
    status.replaceChildren(description);
    pagerButtons(".previous-page").forEach((button) => (button.disabled = !hasEarlier));
    pagerButtons(".next-page").forEach((button) => (button.disabled = !hasNext));
    if (document.activeElement && document.activeElement.disabled) status.focus();
    onShown(replace);
  }

  /** Show the server page at `target` ({token, earlier}); only then is it the current page. */
  async function showServerPage(signal, target) {
    const page = await allPurgeRequests(loadCredentials(), { limit: Number(pageSize.value),
      continuationToken: target.token, signal });
    Object.assign(view, { token: target.token, earlier: target.earlier,
      next: page.continuationToken });
    const first = view.earlier.length * Number(pageSize.value) + 1;
    const last = first + page.requests.length - 1;
    const description = page.requests.length === 0
      ? (view.earlier.length ? "No more open purge requests." : "There are no open purge requests.")
      : `Page ${view.earlier.length + 1}: requests ${first}–${last}` +
        (view.next ? ", more on the next page." : ", the last page.");
    show(page.requests, description, view.earlier.length > 0, Boolean(view.next), target.replace);
  }

  function showMatches(replace) {
    const size = Number(pageSize.value);
    const page = view.matches.slice(view.offset, view.offset + size);
    const pages = Math.max(1, Math.ceil(view.matches.length / size));
    const read = `${view.complete ? "" : "first "}${number.format(view.total)}`;
    const found = `${number.format(view.matches.length)} of ${view.complete ? "" : "the "}` +
      `${read} open purge requests ${view.search.pool || view.search.cache ? "match" : "shown"}`;
    const description = view.matches.length === 0 ? `None of the ${read} open purge ` +
      "requests match." : `${found} (page ${view.offset / size + 1} of ${pages}).`;
    const capped = view.complete ? "" : ` There are more: a search reads at most ` +
      `${number.format(READ_CAP)} open purge requests, so it did not see them all.`;
    show(page, description + capped, view.offset > 0, view.offset + size < view.matches.length,
      replace);
  }

  /**
   * Read from the service again: the server page at `target` (the current one by default), or
   * every page when filtering. A newer load cancels this one, so answers never arrive out of
   * order; the page shown changes only when its answer is in.
   */
  async function load(target = { token: view.token, earlier: view.earlier, replace: true }) {
    loading?.abort();
    const controller = new AbortController();
    loading = controller;
    byId("requests-error").replaceChildren();
    byId("requests").setAttribute("aria-busy", "true");
    status.textContent = view.search ? "Searching all open purge requests…" : "Loading…";
    try {
      if (view.search) {
        const { requests, complete } = await readAll(controller.signal, (count) => {
          status.textContent = `Searching all open purge requests… ${number.format(count)} read`;
        });
        if (controller.signal.aborted) return;
        Object.assign(view, { total: requests.length, complete });
        view.matches = search(requests, view.search);
        view.offset = Math.min(view.offset, Math.max(0, view.matches.length - 1));
        view.offset -= view.offset % Number(pageSize.value);
        showMatches(target.replace);
      } else {
        await showServerPage(controller.signal, target);
      }
    } catch (error) {
      if (isSuperseded(error)) return;
      // Keep what was read before: a failed refresh must not empty the table.
      status.textContent = rows.children.length
        ? "Could not read the open purge requests again; the rows below are from the last read."
        : "";
      byId("requests-error").replaceChildren(errorView(error, Boolean(loadCredentials())));
    } finally {
      if (loading === controller) byId("requests").removeAttribute("aria-busy");
    }
  }

  function restart() {
    view.offset = 0;
    return load({ token: undefined, earlier: [], replace: false });
  }

  /** The state shown, as URL parameters (none for the defaults). */
  function state(params) {
    const { pool, cache, order } = view.search || {};
    if (pool) params.set("pool", pool);
    if (cache) params.set("cache", cache);
    if (order && order !== "api") params.set("order", order);
    if (view.search && view.offset) params.set("page", view.offset / Number(pageSize.value) + 1);
    if (!view.search && view.token) {
      [...view.earlier.slice(1), view.token].forEach((token) => params.append("after", token));
    }
    if (pageSize.value !== DEFAULT_PAGE_SIZE) params.set("rows", pageSize.value);
  }

  /** Show the state that URL parameters describe (a reload, a shared link, back, forward). */
  function apply(params) {
    const rowsPerPage = params.get("rows");
    pageSize.value = PAGE_SIZES.includes(rowsPerPage) ? rowsPerPage : DEFAULT_PAGE_SIZE;
    const pool = params.get("pool") || "";
    const cache = params.get("cache") || "";
    const order = params.get("order") in ORDERS ? params.get("order") : "api";
    filterForm.elements.pool.value = pool;
    filterForm.elements.cache.value = cache;
    filterForm.elements.order.value = order;
    view.search = pool || cache || order !== "api"
      ? { pool: pool.toLowerCase(), cache: cache.toLowerCase(), order } : null;
    const page = Math.max(1, Number.parseInt(params.get("page"), 10) || 1);
    view.offset = view.search ? (page - 1) * Number(pageSize.value) : 0;
    const tokens = params.getAll("after");
    const earlier = tokens.length ? [undefined, ...tokens.slice(0, -1)] : [];
    return load({ token: tokens.at(-1), earlier, replace: true });
  }

  /** Start over with other credentials: nothing read with the old ones stays on screen. */
  function reset(params) {
    show([], "", false, false, true);
    return apply(params);
  }

  function step(forward) {
    const size = Number(pageSize.value);
    if (view.search) {
      view.offset += forward ? size : -size;
      showMatches(false);
      return;
    }
    // From the page shown, not one still loading: a second quick click asks for the same page.
    load(forward ? { token: view.next, earlier: [...view.earlier, view.token], replace: false }
      : { token: view.earlier.at(-1), earlier: view.earlier.slice(0, -1), replace: false });
  }

  filterForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const pool = filterForm.elements.pool.value.trim().toLowerCase();
    const cache = filterForm.elements.cache.value.trim().toLowerCase();
    const order = filterForm.elements.order.value;
    view.search = pool || cache || order !== "api" ? { pool, cache, order } : null;
    restart();
  });
  filterForm.addEventListener("reset", () => {
    view.search = null;
    restart();
  });
  pageSize.addEventListener("change", () => {
    if (!view.search) return restart();
    view.offset = 0;
    return showMatches(false);
  });
  pagerButtons(".previous-page").forEach((button) => button.addEventListener("click",
    () => step(false)));
  pagerButtons(".next-page").forEach((button) => button.addEventListener("click",
    () => step(true)));
  byId("refresh").addEventListener("click", () => load());
  return { load, reset, state, apply };
}
