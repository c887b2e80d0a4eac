// Taskcluster credentials: read from the sign-in form, kept only in this tab's sessionStorage.

const KEY = "purgecache.credentials";

/** The stored credentials {clientId, accessToken, certificate|null}, or null when signed out. */
export function loadCredentials() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(KEY));
    if (stored && stored.certificate) JSON.parse(stored.certificate);
    return stored && stored.clientId && stored.accessToken ? stored : null;
  } catch {
    return null;
  }
}

// Aborted when the credentials change: every request made with the old ones is cancelled, and
// an answer that arrives anyway is never shown (api.js checks it).
let session = new AbortController();

/** The signal of the current credentials (anonymous included); aborted when they change. */
export function sessionSignal() {
  return session.signal;
}

function newSession() {
  session.abort();
  session = new AbortController();
}

export function saveCredentials(credentials) {
  sessionStorage.setItem(KEY, JSON.stringify(credentials));
  newSession();
}

export function forgetCredentials() {
  sessionStorage.removeItem(KEY);
  newSession();
}

/** The certificate's expiry as a Date, or null for permanent credentials. */
export function certificateExpiry(credentials) {
  if (!credentials || !credentials.certificate) return null;
  return new Date(JSON.parse(credentials.certificate).expiry);
}

function checkCertificate(text) {
  let certificate;
  try {
    certificate = JSON.parse(text);
  } catch {
    return "The certificate is not valid JSON; paste it exactly as you received it.";
  }
  if (!certificate || typeof certificate !== "object" || Array.isArray(certificate)) {
    return "The certificate must be a JSON object (with version, scopes, start, expiry, seed, signature).";
  }
  if (typeof certificate.expiry === "number" && certificate.expiry < Date.now()) {
    return `These temporary credentials expired on ${new Date(certificate.expiry).toLocaleString()}.`;
  }
  return null;
}

/**
 * Credentials from the form's fields, or {field, problem} naming the first field that is wrong.
 * A certificate object is stored as the JSON string the Taskcluster clients keep it as.
 */
export function parseCredentials({ clientId, accessToken, certificate }) {
  clientId = clientId.trim();
  accessToken = accessToken.trim();
  certificate = certificate.trim();
  if (!clientId) return { field: "clientId", problem: "Enter your client ID." };
  if (/["\\]/.test(clientId)) {
    return { field: "clientId", problem: 'A client ID cannot contain " or \\.' };
  }
  if (!accessToken) return { field: "accessToken", problem: "Enter your access token." };
  if (certificate) {
    const problem = checkCertificate(certificate);
    if (problem) return { field: "certificate", problem };
  }
  return { credentials: { clientId, accessToken, certificate: certificate || null } };
}
