// One pool as its workers see it: the purgeRequests reply, with an optional `since`.

import { purgeRequests } from "./api.js";
import { loadCredentials } from "./credentials.js";
import { cacheNameView, el, errorView, setFieldProblem, timeView } from "./dom.js";
import { localTime, parseSince, poolProblem, visibleJson } from "./format.js";
import { panelReader } from "./panel.js";

const byId = (id) => document.getElementById(id);

function heading(pool, count, since) {
  const what = `${count} purge ${count === 1 ? "request" : "requests"}`;
  const after = since ? ` made at or after ${localTime(since)} (${since})` : "";
  return el("h3", { tabindex: "-1" }, `Workers of ${pool} receive ${what}${after}`);
}

function replyView(pool, since, reply) {
  const rows = reply.requests.map((request) => el("tr", {},
    el("td", { "data-label": "Cache name" }, cacheNameView(request.cacheName)),
    el("td", { "data-label": "Before" }, timeView(request.before))));
  return [
    heading(pool, reply.requests.length, since),
    el("p", { class: "note" }, "A worker deletes its copy of each cache listed here if the copy " +
      "was made before the time shown."),
    rows.length > 0 && el("table", { class: "requests" },
      el("caption", { class: "visually-hidden" }, `Purge requests for ${pool}`),
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Cache name"),
        el("th", { scope: "col" }, "Before"))),
      el("tbody", {}, rows)),
    el("details", {}, el("summary", {}, "Exact reply (JSON), as a worker receives it"),
      el("pre", {}, el("code", {}, visibleJson(reply)))),
  ];
}

/** `onShown(replace)`: another pool (or none) is shown; `replace` as for the table. */
export function setupPoolView({ onShown }) {
  const form = byId("pool-form");
  const poolField = byId("pool-id");
  const sinceField = byId("since");
  const result = byId("pool-result");
  const reader = panelReader(result, byId("pool-status"), "h3, p.note, table, details");
  let shown = null;

  /** Ask for `pool`; a newer question (or clear) cancels this one, whose answer is dropped.
   * A failed read of the pool shown keeps its reply, under the error. */
  function show(pool, since) {
    if (shown?.pool !== pool || shown?.since !== since) result.replaceChildren();
    shown = { pool, since };
    return reader.read(`Asking the service what the workers of ${pool} receive…`,
      async (signal) => {
        const reply = await purgeRequests(loadCredentials(), pool, since, signal);
        result.replaceChildren(...replyView(pool, since, reply).filter(Boolean));
      }, (error) => errorView(error, Boolean(loadCredentials())));
  }

  function submit(replace = false) {
    const pool = poolField.value.trim();
    const sinceText = sinceField.value.trim();
    const since = sinceText ? parseSince(sinceText) : {};
    setFieldProblem(poolField, poolProblem(pool));
    setFieldProblem(sinceField, since.problem);
    if (poolProblem(pool)) return poolField.focus();
    if (since.problem) return sinceField.focus();
    const shown = show(pool, since.instant);
    onShown(replace);
    return shown;
  }

  function clear(replace) {
    reader.clear();
    shown = null;
    onShown(replace);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  return {
    /** Show this pool without `since` and move the reader there. */
    async open(pool) {
      poolField.value = pool;
      sinceField.value = "";
      await submit();
      result.querySelector("h3")?.focus();
    },
    refresh(pool) {
      if (shown && shown.pool === pool) show(shown.pool, shown.since);
    },
    clear: () => clear(true),
    /** The pool shown (and its `since`) as URL parameters. */
    state(params) {
      if (!shown) return;
      params.set("show", shown.pool);
      if (shown.since) params.set("since", shown.since);
    },
    /** Show what URL parameters describe, or nothing. */
    apply(params) {
      const pool = params.get("show");
      if (!pool || poolProblem(pool)) return clear(true);
      poolField.value = pool;
      sinceField.value = params.get("since") || "";
      return submit(true);
    },
  };
}
