// Searching the open purge requests in the browser: API v1's listing has no filter, order or
// count, so the page reads every page (1000 rows each, up to READ_CAP rows) and filters,
// sorts and counts here.

import { allPurgeRequests } from "./api.js";
import { loadCredentials } from "./credentials.js";

const PAGE = 1000;
/** The most rows a search reads; past it the page says that it did not see them all. */
export const READ_CAP = 50000;

const byBefore = (a, b) => (a.before < b.before ? -1 : a.before > b.before ? 1 : 0);
/** Orders by name; `api` is the service's own (pool, then cache name). `before` is always
 * written alike (ISO, UTC, milliseconds), so comparing the text compares the instants. */
export const ORDERS = {
  api: null,
  newest: (a, b) => byBefore(b, a),
  oldest: byBefore,
};

export function poolOf(request) {
  return `${request.provisionerId}/${request.workerType}`;
}

/** Every open purge request, up to READ_CAP: {requests, complete}. */
export async function readAll(signal, progress) {
  const requests = [];
  let continuationToken;
  do {
    const page = await allPurgeRequests(loadCredentials(), { limit: PAGE, continuationToken,
      signal });
    requests.push(...page.requests);
    continuationToken = page.continuationToken;
    progress(requests.length);
  } while (continuationToken && requests.length < READ_CAP);
  return { requests, complete: !continuationToken };
}

/** The requests whose pool and cache name contain `pool` and `cache` (lowercase), in `order`. */
export function search(requests, { pool, cache, order }) {
  const found = requests.filter((request) => poolOf(request).toLowerCase().includes(pool) &&
    request.cacheName.toLowerCase().includes(cache));
  return ORDERS[order] ? found.sort(ORDERS[order]) : found;
}
