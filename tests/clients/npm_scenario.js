// Drive the OFFICIAL Taskcluster JavaScript client (taskcluster-client) against a
// purge-cache server and print JSON on stdout.
//
//   node tests/clients/npm_scenario.js SCENARIO [ARG]
//
// The client is loaded from the npm project made by scripts/setup-client-envs.sh:
// $TC_NPM_DIR, default <repo>/.ci-work/clients/npm. Connection settings come from
// TC_ROOT_URL, TC_CLIENT_ID and TC_ACCESS_TOKEN (no client id or token: anonymous calls).
//
// Scenarios (ARG is JSON where given):
//   info       client version
//   ping       the result of ping()
//   calls      '[CALL, ...]' with CALL = {"method": NAME, "pool": "p/w" (optional),
//              "payload": {...} (optional), "query": {...} (optional),
//              "credentials": "anonymous" | {"clientId", "accessToken"} (optional),
//              "temporary": {"scopes": [...], "name": NAME (optional)} (optional:
//              temporary credentials minted from the credentials above, valid from one
//              minute ago for an hour), "authorizedScopes": [...] (optional)};
//              prints [{"result": ...} | {"error": {...}}, ...] in order
//   publish    ping, purges and both listings (a short form of upstream's
//              "Publish purge-cache requests")
//   paginate   '{"pool": "p/w", "count": N, "limit": L}': N purges, then every page of
//              allPurgeRequests with that limit
//   signed-urls '{"pool": "p/w", "since": ISO}': bewit URLs built by the client for
//              purgeRequests (without and with since) and allPurgeRequests, plus the
//              unsigned purgeRequests URL, each fetched with a plain anonymous GET
//
// The client is made with `retries: 0`, so a server error surfaces at once. Exit status 0
// means the scenario ran to its end; an API error that a `calls` entry provoked is data.
'use strict';

const path = require('node:path');
const { createRequire } = require('node:module');
const { pathToFileURL } = require('node:url');

const REPO = path.resolve(__dirname, '..', '..');
const NPM_DIR = path.resolve(process.env.TC_NPM_DIR || path.join(REPO, '.ci-work', 'clients', 'npm'));

const POOL_1 = 'dummy-provisioner-extended-extended/dummy-worker-extended-extended';
const POOL_2 = 'dummy-provisioner-extended-extended-2/dummy-worker-extended-extended';

async function loadClient() {
  // taskcluster-client is an ES module installed outside this folder: resolve it from the
  // npm project, then import it by file URL.
  const requireFromEnv = createRequire(path.join(NPM_DIR, 'package.json'));
  const entry = requireFromEnv.resolve('taskcluster-client');
  const version = requireFromEnv('taskcluster-client/package.json').version;
  const module = await import(pathToFileURL(entry).href);
  return { taskcluster: module.default, version };
}

function connectionCredentials() {
  const clientId = process.env.TC_CLIENT_ID;
  const accessToken = process.env.TC_ACCESS_TOKEN;
  return clientId && accessToken ? { clientId, accessToken } : {};
}

function makeClient(taskcluster, credentials, temporary, authorizedScopes) {
  let creds = connectionCredentials();
  if (credentials === 'anonymous') {
    creds = {}; // an explicit empty object: no fallback to TASKCLUSTER_* variables
  } else if (credentials) {
    creds = credentials;
  }
  if (temporary) {
    const now = Date.now();
    creds = taskcluster.createTemporaryCredentials({
      credentials: creds,
      start: new Date(now - 60 * 1000),
      expiry: new Date(now + 3600 * 1000),
      scopes: temporary.scopes,
      ...(temporary.name ? { clientId: temporary.name } : {}),
    });
  }
  return new taskcluster.PurgeCache({
    rootUrl: process.env.TC_ROOT_URL,
    credentials: creds,
    retries: 0,
    ...(authorizedScopes ? { authorizedScopes } : {}),
  });
}

function describeError(err) {
  return {
    class: err.constructor ? err.constructor.name : typeof err,
    code: err.code === undefined ? null : err.code,
    statusCode: err.statusCode === undefined ? null : err.statusCode,
    body: err.body === undefined ? null : err.body,
    message: String(err.message),
  };
}

async function runCall(taskcluster, spec) {
  const client = makeClient(taskcluster, spec.credentials, spec.temporary, spec.authorizedScopes);
  const args = [];
  if (spec.pool !== undefined) {
    args.push(spec.pool);
  }
  if (spec.payload !== undefined) {
    args.push(spec.payload);
  }
  if (spec.query !== undefined) {
    args.push(spec.query);
  }
  try {
    const result = await client[spec.method](...args);
    return { result: result === undefined ? null : result };
  } catch (err) {
    if (err.statusCode === undefined) {
      throw err; // not an answer from the server: a harness failure
    }
    return { error: describeError(err) };
  }
}

async function publish(taskcluster) {
  const client = makeClient(taskcluster);
  const seen = {};
  seen.ping = await client.ping();
  seen.empty = await client.allPurgeRequests();
  seen.purge = (await client.purgeCache(POOL_1, { cacheName: 'my-test-cache' })) ?? null;
  await new Promise(resolve => setTimeout(resolve, 50));
  await client.purgeCache(POOL_1, { cacheName: 'my-test-cache-2' });
  await client.purgeCache(POOL_2, { cacheName: 'my-test-cache' });
  seen.all = await client.allPurgeRequests();
  seen.pool_1 = await client.purgeRequests(POOL_1);
  seen.pool_2 = await client.purgeRequests(POOL_2);
  const second = seen.pool_1.requests[1];
  seen.since_second = await client.purgeRequests(POOL_1, { since: second.before });
  await new Promise(resolve => setTimeout(resolve, 10));
  seen.now = new Date().toJSON();
  seen.since_now = await client.purgeRequests(POOL_1, { since: seen.now });
  // The JavaScript `Date.prototype.toString()` form (what upstream's own tests send).
  seen.since_date_string_sent = new Date(Date.parse(second.before)).toString();
  seen.since_date_string = await client.purgeRequests(POOL_1, {
    since: seen.since_date_string_sent,
  });
  return seen;
}

async function paginate(taskcluster, { pool, count, limit }) {
  const client = makeClient(taskcluster);
  for (let i = 0; i < count; i++) {
    await client.purgeCache(pool, { cacheName: `cache-${String(i).padStart(3, '0')}` });
  }
  const pages = [];
  const query = { limit: String(limit) };
  for (;;) {
    const page = await client.allPurgeRequests({ ...query });
    pages.push(page);
    if (!page.continuationToken || pages.length > count + 1) {
      break;
    }
    query.continuationToken = page.continuationToken;
  }
  return { pages };
}

async function signedUrls(taskcluster, { pool, since }) {
  const client = makeClient(taskcluster);
  const urls = {
    purgeRequests: client.buildSignedUrl(client.purgeRequests, pool),
    purgeRequests_since: client.buildSignedUrl(client.purgeRequests, pool, { since }),
    allPurgeRequests: client.buildSignedUrl(client.allPurgeRequests),
    unsigned: client.buildUrl(client.purgeRequests, pool),
  };
  const seen = {};
  for (const [name, url] of Object.entries(urls)) {
    const response = await fetch(url);
    seen[name] = { url, status: response.status, body: await response.json() };
  }
  return seen;
}

async function main(argv) {
  const [scenario, rawArg] = argv;
  if (!process.env.TC_ROOT_URL) {
    throw new Error('TC_ROOT_URL must be set');
  }
  const arg = rawArg === undefined ? undefined : JSON.parse(rawArg);
  const { taskcluster, version } = await loadClient();
  let result;
  switch (scenario) {
    case 'info':
      result = { version };
      break;
    case 'ping':
      result = await makeClient(taskcluster).ping();
      break;
    case 'calls':
      result = [];
      for (const spec of arg) {
        result.push(await runCall(taskcluster, spec));
      }
      break;
    case 'publish':
      result = await publish(taskcluster);
      break;
    case 'paginate':
      result = await paginate(taskcluster, arg);
      break;
    case 'signed-urls':
      result = await signedUrls(taskcluster, arg);
      break;
    default:
      throw new Error(`unknown scenario ${JSON.stringify(scenario)}`);
  }
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}

main(process.argv.slice(2)).catch(err => {
  process.stderr.write(`npm_scenario: ${err && err.stack ? err.stack : err}\n`);
  if (err && err.body) {
    process.stderr.write(`response body: ${JSON.stringify(err.body)}\n`);
  }
  process.exitCode = 1;
});
