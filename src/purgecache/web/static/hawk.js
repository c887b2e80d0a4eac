// Hawk request signing (auth.md §1) the way the Taskcluster JS client does it, with WebCrypto.
// The access token never leaves the browser: only the MAC computed with it is sent.

const encoder = new TextEncoder();

function base64(bytes) {
  let binary = "";
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

async function hmacSha256(key, text) {
  const algorithm = { name: "HMAC", hash: "SHA-256" };
  const cryptoKey = await crypto.subtle.importKey("raw", encoder.encode(key), algorithm, false, [
    "sign",
  ]);
  return base64(await crypto.subtle.sign("HMAC", cryptoKey, encoder.encode(text)));
}

/** base64(SHA-256) of the Hawk payload string (auth.md §1.4). */
export async function payloadHash(contentType, body) {
  const text = `hawk.1.payload\n${contentType}\n${body}\n`;
  return base64(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

/** The `ext` attribute: base64 of JSON with the certificate and/or authorizedScopes, or "". */
export function extFor({ certificate, authorizedScopes }) {
  const ext = {};
  if (certificate) ext.certificate = JSON.parse(certificate);
  if (authorizedScopes) ext.authorizedScopes = authorizedScopes;
  return Object.keys(ext).length ? base64(encoder.encode(JSON.stringify(ext))) : "";
}

function newNonce() {
  return Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(36)).join("");
}

/** The string the MAC covers (auth.md §1.2); `url` is a URL object as the browser will send it. */
export function macInput({ ts, nonce, method, url, hash = "", ext = "" }) {
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  const resource = url.pathname + url.search;
  const lines = ["hawk.1.header", ts, nonce, method.toUpperCase(), resource, url.hostname, port];
  return [...lines, hash, ext].join("\n") + "\n";
}

/**
 * The Authorization header for one request. A payload hash is included when there is a body.
 * `ts` and `nonce` are only given by tests that reproduce a recorded header.
 */
export async function authorization({ credentials, method, url, contentType = "", body = null,
  ts = String(Math.floor(Date.now() / 1000)), nonce = newNonce() }) {
  const attributes = { id: credentials.clientId, ts, nonce };
  if (body !== null) attributes.hash = await payloadHash(contentType, body);
  const ext = extFor(credentials);
  if (ext) attributes.ext = ext;
  const input = macInput({ ts, nonce, method, url, hash: attributes.hash, ext });
  attributes.mac = await hmacSha256(credentials.accessToken, input);
  const pairs = Object.entries(attributes).map(([name, value]) => `${name}="${value}"`);
  return `Hawk ${pairs.join(", ")}`;
}
