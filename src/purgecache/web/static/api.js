// The purge-cache JSON API, the same public one every client uses; Hawk-signed when signed in.

import { loadCredentials, sessionSignal } from "./credentials.js";
import { authorization } from "./hawk.js";

const API_BASE = new URL("api/purge-cache/v1/", document.baseURI);
const FOOTER = "\n\n---\n\n";
// model.OBSERVER_HEADER (a test reads it here): a purgeRequests call from someone looking
export const OBSERVER_HEADER = "x-purgecache-observer";

/** A failed call: HTTP status (0 when the service did not answer), Taskcluster code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function toError(response) {
  const reply = await response.json().catch(() => null);
  if (reply && typeof reply.code === "string" && typeof reply.message === "string") {
    return new ApiError(response.status, reply.code, reply.message.split(FOOTER)[0]);
  }
  const text = reply && reply.error ? reply.error : response.statusText;
  return new ApiError(response.status, `HTTP ${response.status}`, text || "No details.");
}

/** Says "refused" (detail: the ApiError) when the service no longer accepts the signed-in
 * credentials (a 401 to a call made with them): revoked, rotated or expired meanwhile. */
export const refusals = new EventTarget();

function stillSignedIn(credentials) {
  const stored = loadCredentials();
  return Boolean(credentials && stored && stored.clientId === credentials.clientId &&
    stored.accessToken === credentials.accessToken);
}

/**
 * Whether a call ended because a newer one (or new credentials) superseded it; anything but
 * that or an ApiError is a fault of the page and is thrown on, never shown as the service's.
 */
export function isSuperseded(error) {
  if (error.name === "AbortError") return true;
  if (error instanceof ApiError) return false;
  throw error;
}

async function call(credentials, method, path,
  { query = {}, body, signal, headers: own = {} } = {}) {
  const session = sessionSignal();
  signal = signal ? AbortSignal.any([session, signal]) : session;
  const url = new URL(path, API_BASE);
  for (const [key, value] of Object.entries(query)) {
    // "" is a value (the empty cache name is legal); undefined and null mean "not given"
    if (value !== undefined && value !== null) url.searchParams.set(key, value);
  }
  const text = body === undefined ? null : JSON.stringify(body);
  const headers = text === null ? { ...own } : { ...own, "Content-Type": "application/json" };
  if (credentials) {
    const contentType = text === null ? "" : "application/json";
    headers.Authorization = await authorization({ credentials, method, url, contentType,
      body: text });
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body: text, signal, cache: "no-store",
      credentials: "omit" });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "NetworkError", `The service did not answer (${error.message}).`);
  }
  const answer = response.ok ? (response.status === 204 ? null : await response.json()) : null;
  const error = response.ok ? null : await toError(response);
  signal.throwIfAborted(); // made with credentials that are no longer signed in, or superseded
  if (error && error.status === 401 && stillSignedIn(credentials)) {
    refusals.dispatchEvent(new CustomEvent("refused", { detail: error }));
  }
  if (error) throw error;
  return answer;
}

const poolPath = (workerPoolId) => `purge-cache/${encodeURIComponent(workerPoolId)}`;
/** An extension's path for one pool: ext/<kind>/<workerPoolId>. */
const extPoolPath = (kind, workerPoolId) => `ext/${kind}/${encodeURIComponent(workerPoolId)}`;

/** One page of every open purge request: {requests, continuationToken?}. */
export function allPurgeRequests(credentials, { limit, continuationToken, signal } = {}) {
  return call(credentials, "GET", "purge-cache/list", {
    query: { limit: limit && String(limit), continuationToken }, signal });
}

/** What a worker of the pool receives: {requests}, only those with before >= since if given. */
export function purgeRequests(credentials, workerPoolId, since, signal) {
  // as someone looking, not a worker: not counted as fetching the pool's purges
  return call(credentials, "GET", poolPath(workerPoolId), { query: { since }, signal,
    headers: { [OBSERVER_HEADER]: "1" } });
}

/** Ask workers of the pool to delete copies of the cache made before now. */
export function purgeCache(credentials, workerPoolId, cacheName) {
  return call(credentials, "POST", poolPath(workerPoolId), { body: { cacheName } });
}

/**
 * One page of the purge history (this service's extension; 404 elsewhere), newest first:
 * {events, total, continuationToken?}. Filters: workerPoolId, cacheName, clientId (exact),
 * since (inclusive) and until (exclusive).
 */
export function listPurgeHistory(credentials, { filters = {}, limit, continuationToken, signal } = {}) {
  return call(credentials, "GET", "ext/history", {
    query: { ...filters, limit: limit && String(limit), continuationToken }, signal });
}

/**
 * How far the pool's active workers got with each open purge (only `cacheName`'s when it is
 * given, "" included): {workerPoolId, activeSince, purges: [{cacheName, before, activeWorkers,
 * applied, appliedInUse, fetched, notSeen, instancesDeleted, bytesFreed, stragglers,
 * stragglersOmitted}]}. This service's purgeStatus extension; 404 elsewhere.
 */
export function purgeStatus(credentials, workerPoolId, cacheName, signal) {
  return call(credentials, "GET", extPoolPath("status", workerPoolId), {
    query: { cacheName }, signal });
}

/** The caches the pool's active workers hold: {workerPoolId, activeSince, caches: [{cacheName,
 * workers, instances, bytes, lastUsed?}]}. This service's poolCaches extension; 404 elsewhere. */
export function poolCaches(credentials, workerPoolId, signal) {
  return call(credentials, "GET", extPoolPath("caches", workerPoolId), { signal });
}

/**
 * Review (`dryRun`) or apply a purge by patterns: {workerPoolPattern, cacheNamePattern, dryRun,
 * digest?, reason?, link?} -> {selector, dryRun, applied, pairs, totals, digest,
 * confirmThreshold, before?}; 409 when the matched set changed since the review that gave
 * `digest`. The createSelectorPurge extension (not on every purgecache: 404 there).
 */
export function createSelectorPurge(credentials, selector, signal) {
  return call(credentials, "POST", "ext/selector-purge", { body: selector, signal });
}
