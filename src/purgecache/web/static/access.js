// Signing in and out, and what the current credentials (or the anonymous scopes) allow.

import { allPurgeRequests, refusals } from "./api.js";
import { certificateExpiry, forgetCredentials, loadCredentials, parseCredentials,
  saveCredentials } from "./credentials.js";
import { el, errorView, setFieldProblem } from "./dom.js";
import { localTime } from "./format.js";

const byId = (id) => document.getElementById(id);

/** Can these credentials (null: anonymous) list all requests? The one scope probed for free. */
async function probe(credentials) {
  try {
    await allPurgeRequests(credentials, { limit: 1 });
    return { listing: true, error: null };
  } catch (error) {
    return { listing: false, error };
  }
}

function capability(state, text, scope) {
  const label = { yes: "Allowed", no: "Not allowed", later: "Checked when used" }[state];
  return el("li", {}, el("span", { class: `badge ${state}` }, label), " ", text, " — scope ",
    el("code", {}, scope));
}

function capabilities({ listing }) {
  return [
    capability(listing ? "yes" : "no", "List all open purge requests",
      "purge-cache:all-purge-requests"),
    capability("later", "See what the workers of a pool receive",
      "purge-cache:purge-requests::<provisionerId/workerType>"),
    capability("later", "Request a purge", "purge-cache:<provisionerId/workerType>:<cache name>"),
  ];
}

function identity(credentials) {
  const expiry = certificateExpiry(credentials);
  return expiry
    ? `${credentials.clientId} (temporary credentials, valid until ${localTime(expiry)})`
    : credentials.clientId;
}

export function setupAccess({ onChange }) {
  const form = byId("sign-in");
  const fields = { clientId: byId("client-id"), accessToken: byId("access-token"),
    certificate: byId("certificate") };

  function render(credentials, result) {
    form.hidden = Boolean(credentials);
    byId("signed-in").hidden = !credentials;
    byId("who").textContent = credentials ? `Signed in as ${credentials.clientId}` : "Not signed in";
    byId("signed-in-as").textContent = credentials ? identity(credentials) : "";
    byId("access-intro").textContent = credentials
      ? "Requests are signed with these credentials. They allow:"
      : "Not signed in: requests carry no credentials, so this deployment's anonymous scopes " +
        "decide. Without credentials you can:";
    byId("capabilities").replaceChildren(...capabilities(result));
    const unexpected = result.error && result.error.status !== 403;
    byId("access-error").replaceChildren(unexpected ? errorView(result.error, true) : "");
  }

  async function signIn(event) {
    event.preventDefault();
    Object.values(fields).forEach((field) => setFieldProblem(field, null));
    byId("sign-in-error").replaceChildren();
    const parsed = parseCredentials(Object.fromEntries(
      Object.entries(fields).map(([name, field]) => [name, field.value])));
    if (parsed.problem) {
      setFieldProblem(fields[parsed.field], parsed.problem);
      fields[parsed.field].focus();
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    byId("sign-in-status").textContent = "Checking the credentials with the service…";
    const result = await probe(parsed.credentials);
    button.disabled = false;
    form.removeAttribute("aria-busy");
    byId("sign-in-status").textContent = "";
    if (result.error && [0, 401].includes(result.error.status)) {
      byId("sign-in-error").replaceChildren(errorView(result.error, false, { alert: false }));
      return;
    }
    saveCredentials(parsed.credentials);
    form.reset();
    render(parsed.credentials, result);
    byId("signed-in-as").focus();
    onChange();
  }

  /** Forget the credentials; `refused`: because the service stopped accepting them. */
  async function signOut(refused = null) {
    const credentials = loadCredentials();
    forgetCredentials();
    form.reset();
    byId("sign-in-error").replaceChildren(...(refused ? [
      el("p", { class: "problem" }, `The service no longer accepts the credentials of ` +
        `${credentials ? credentials.clientId : "this tab"}, so you were signed out. Sign in ` +
        "again with valid ones."),
      errorView(refused, false, { alert: false }),
    ] : []));
    render(null, await probe(null));
    fields.clientId.focus();
    onChange();
  }

  if (!window.isSecureContext || !crypto.subtle) {
    byId("insecure").hidden = false;
    form.querySelectorAll("input, textarea, button").forEach((control) => (control.disabled = true));
  }
  form.addEventListener("submit", signIn);
  byId("sign-out").addEventListener("click", () => signOut());
  refusals.addEventListener("refused", (event) => signOut(event.detail));
  return {
    async start() {
      const credentials = loadCredentials();
      render(credentials, await probe(credentials));
    },
  };
}
