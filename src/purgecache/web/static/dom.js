// Small DOM helpers shared by the views: building elements, times, error panels.

import { loadCredentials } from "./credentials.js";
import { localTime, messageBlocks, poolProblem, relativeTime, truncateRuns, visibleName,
  visibleRuns } from "./format.js";

/** An element with attributes ("on…" become listeners, true an empty attribute) and children. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.flat().filter((child) => ![null, undefined, false].includes(child)));
  return node;
}

/**
 * An instant as local time, "3 min ago" (kept current by refreshRelativeTimes) and the UTC
 * value as the API sends it, shown rather than only on hover.
 */
export function timeView(iso) {
  return el("span", { class: "when" },
    el("time", { datetime: iso }, localTime(iso)),
    el("span", { class: "relative", "data-relative": iso }, relativeTime(iso)),
    el("span", { class: "utc" }, iso));
}

/** An instant within a sentence: local time, then the UTC value in parentheses. */
export function inlineTimeView(iso) {
  return el("span", { class: "when-inline" }, el("time", { datetime: iso }, localTime(iso)),
    " (", el("span", { class: "utc" }, iso), ")");
}

export function refreshRelativeTimes() {
  for (const node of document.querySelectorAll("[data-relative]")) {
    node.textContent = relativeTime(node.dataset.relative);
  }
}

const SHORT_NAME = 40; // characters shown of a longer cache name until it is expanded
const count = new Intl.NumberFormat();

function runsView(runs) {
  return runs.map((run) => run.escape
    ? el("span", { class: "escape", title: run.code }, run.text)
    : run.text);
}

/** Which long name a button acts on, for its accessible name: its start and its end (long
 * names often share a prefix), invisible characters written out. */
function nameHint(cacheName) {
  const characters = [...visibleName(cacheName)];
  return `${characters.slice(0, 24).join("")}…${characters.slice(-12).join("")}`;
}

/** A long name cut short, with "Show all" (and back) and "Copy" (the exact name); the buttons'
 * accessible names say which name ("Copy: …"), as a table has one pair per row. */
function longNameView(cacheName, runs) {
  const text = el("code", { class: "name" }, runsView(truncateRuns(runs, SHORT_NAME)), "…");
  const length = count.format([...cacheName].length);
  const hint = nameHint(cacheName);
  const say = (button, words) => {
    button.textContent = words;
    button.setAttribute("aria-label", `${words}: ${hint}`);
    return button;
  };
  const toggle = say(el("button", { type: "button", class: "link", "aria-expanded": "false",
    onclick() {
      const expand = toggle.getAttribute("aria-expanded") === "false";
      text.replaceChildren(...runsView(expand ? runs : truncateRuns(runs, SHORT_NAME)),
        expand ? "" : "…");
      toggle.setAttribute("aria-expanded", String(expand));
      say(toggle, expand ? "Show less" : `Show all ${length} characters`);
    } }), `Show all ${length} characters`);
  const copy = say(el("button", { type: "button", class: "link",
    async onclick() {
      try {
        await navigator.clipboard.writeText(cacheName);
        say(copy, "Copied");
      } catch {
        say(copy, "Could not copy");
      }
    } }), "Copy");
  return el("span", { class: "long-name" }, text, " ", toggle, " ", copy);
}

/**
 * A cache name as text, never markup: invisible characters and spaces at either end are shown
 * as marked escapes (\n, \u{200B}, ␣), the empty name (allowed by the API) is said, and a long
 * name is cut short with "Show all" and "Copy".
 */
export function cacheNameView(cacheName) {
  if (cacheName === "") return el("em", {}, "(empty name)");
  return escapedTextView(cacheName);
}

/** Text someone typed (a cache name, a purge's reason) as cacheNameView shows it. */
export function escapedTextView(text) {
  const runs = visibleRuns(text);
  if ([...text].length > SHORT_NAME + 10) return longNameView(text, runs);
  return el("code", { class: "name" }, runsView(runs));
}

function summary(error, signedIn) {
  if (error.status === 403 && !signedIn) return "Not allowed without credentials.";
  if (error.status === 403) return "Not allowed: these credentials lack a scope this needs.";
  if (error.status === 401) return "The service did not accept the credentials.";
  if (error.status === 0) return "The service could not be reached.";
  if (error.status >= 500) return "The service failed to answer; try again shortly.";
  return "The service refused the request.";
}

function hint(error, signedIn) {
  if (error.status === 403 && !signedIn) {
    return "You are not signed in, so only this deployment's anonymous scopes apply. " +
      "Sign in with credentials that hold the scope named below.";
  }
  if (error.status === 401 && /Stale timestamp/.test(error.message)) {
    return "Your computer's clock differs from the service's by more than 15 minutes.";
  }
  if (error.status === 401 && /Bad mac/.test(error.message)) {
    return "Check the client ID and access token (and that the certificate, if any, came " +
      "with them): any mismatch gives “Bad mac”.";
  }
  return null;
}

/**
 * A readable panel for an ApiError: what happened, a hint, and Taskcluster's own message (with
 * its invisible characters marked, as it may quote a cache name or a scope); an
 * alert unless it is part of a summary that is announced as a whole.
 */
export function errorView(error, signedIn, { alert = true } = {}) {
  const code = error.status ? `${error.status} ${error.code}` : error.code;
  const tip = hint(error, signedIn);
  return el("div", { class: "error", role: alert ? "alert" : null },
    el("p", { class: "error-title" }, el("strong", {}, summary(error, signedIn)), ` (${code})`),
    tip && el("p", {}, tip),
    messageBlocks(error.message).map((block) => {
      const text = runsView(visibleRuns(block.text, { layout: true }));
      return block.code ? el("pre", {}, el("code", {}, text)) : el("p", {}, text);
    }));
}

/** Show `message` (or nothing) as the problem of a form field, linked for screen readers. */
export function setFieldProblem(field, message) {
  const note = document.getElementById(`${field.id}-problem`);
  note.textContent = message || "";
  note.hidden = !message;
  if (message) field.setAttribute("aria-invalid", "true");
  else field.removeAttribute("aria-invalid");
}

/**
 * Why reading a pool through one of this service's extensions failed: the service has no such
 * extension (404: a Taskcluster deployment, an older purgecache), the caller lacks
 * `purge-cache:history::<pool>` (403), or anything else, as errorView says it.
 */
export function poolReadRefusal(error, { pool, endpoint, absent, reading }) {
  if (error.status === 404) {
    return el("p", { class: "problem" }, `This service ${absent} (its ${endpoint} extension ` +
      `answered ${error.status} ${error.code}: a Taskcluster deployment or an older ` +
      "purgecache).");
  }
  const signedIn = Boolean(loadCredentials());
  if (error.status !== 403) return errorView(error, signedIn);
  return el("div", {}, el("p", { class: "problem" }, `${reading} needs the scope `,
    el("code", {}, `purge-cache:history::${pool}`), ", which ",
    signedIn ? "these credentials do not hold." : "anonymous access does not have here."),
  errorView(error, signedIn));
}

/** The worker pool typed in `field`, or null: then its problem is shown and the field focused. */
export function typedPool(field) {
  const pool = field.value.trim();
  setFieldProblem(field, poolProblem(pool));
  if (!poolProblem(pool)) return pool;
  field.focus();
  return null;
}
