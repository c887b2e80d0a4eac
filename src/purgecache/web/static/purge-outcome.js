// What came of purging several caches: one summary, then the caches grouped by what happened
// (requested, refused for one reason, not known), never one alert per cache.

import { cacheNameView, el, errorView } from "./dom.js";
import { visibleName } from "./format.js";

const LIST_OPEN_UP_TO = 5;
const LABELS = { requested: "Requested", refused: "Refused", unknown: "Not known" };

export const caches = (count) => `${count} ${count === 1 ? "cache" : "caches"}`;

/** "requested"; "refused" (the service said no, so nothing was applied); or "unknown" (no
 * answer, or the service failed while answering: it may or may not have been applied). */
function kindOf(error) {
  if (!error) return "requested";
  return error.status === 0 || error.status >= 500 ? "unknown" : "refused";
}

function title(pool, count, total) {
  if (count.requested === total) return `Purge requested for ${caches(total)} on ${pool}.`;
  if (count.refused === total) return `Nothing was purged on ${pool}: the service refused.`;
  if (count.unknown === total) {
    return `Not known whether the purge of ${caches(total)} on ${pool} was applied: the ` +
      "service did not answer.";
  }
  const rest = [count.refused && `${count.refused} refused`,
    count.unknown && `${count.unknown} not known`].filter(Boolean).join(", ");
  return `Purge requested for ${count.requested} of ${caches(total)} on ${pool}; ${rest}.`;
}

/** Outcomes grouped by kind and, for failures, by status and Taskcluster code. */
function groupsOf(outcomes) {
  const groups = new Map();
  for (const { name, error } of outcomes) {
    const kind = kindOf(error);
    const key = error ? `${kind} ${error.status} ${error.code}` : kind;
    if (!groups.has(key)) groups.set(key, { kind, error, names: [] });
    groups.get(key).names.push(name);
  }
  return [...groups.values()];
}

function namesView(names) {
  const list = el("ul", { class: "names" }, names.map((name) => el("li", {}, cacheNameView(name))));
  if (names.length <= LIST_OPEN_UP_TO) return list;
  return el("details", {}, el("summary", {}, `The ${names.length} cache names`), list);
}

function groupView({ kind, error, names }, { pool, signedIn, onCheck }) {
  const alike = names.length > 1
    ? `The service's answer for ${visibleName(names[0])}; the others got the same kind of answer.`
    : null;
  return el("div", { class: `outcome-group ${kind}` },
    el("p", {}, el("span", { class: `badge ${kind === "requested" ? "yes" : "no"}` },
      LABELS[kind]), " ", caches(names.length)),
    namesView(names),
    kind === "unknown" && el("p", {}, "These purges may or may not have been applied. ",
      el("button", { type: "button", class: "secondary", onclick: () => onCheck(pool) },
        `Check what the workers of ${pool} receive`)),
    error && errorView(error, signedIn, { alert: false }),
    error && alike && el("p", { class: "note" }, alike));
}

/** The outcome section: a focusable summary heading, the groups, and a retry button. */
export function outcomeView(pool, outcomes, { signedIn, onRetry, onCheck }) {
  const groups = groupsOf(outcomes);
  const count = { requested: 0, refused: 0, unknown: 0 };
  groups.forEach((group) => (count[group.kind] += group.names.length));
  const failed = outcomes.filter((outcome) => outcome.error).map((outcome) => outcome.name);
  return [
    el("h3", { tabindex: "-1", class: failed.length ? "failed" : "ok" },
      title(pool, count, outcomes.length)),
    ...groups.map((group) => groupView(group, { pool, signedIn, onCheck })),
    failed.length > 0 && el("button", { type: "button", onclick: () => onRetry(failed) },
      `Retry the ${caches(failed.length)} not purged…`),
  ].filter(Boolean);
}
