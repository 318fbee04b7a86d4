// The REST API, exactly as a script calls it: same paths, same parameters, the user's bearer
// token when one was given. The page never asks anything a user could not ask.

const TOKEN_KEY = "tasklake.token";

export class AuthRequired extends Error {}

export class ApiFailure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** A token given as ?token= is kept for this tab only and taken out of the address bar, so
 * a view shared by its URL never carries the secret. */
export function adoptToken() {
  const url = new URL(window.location.href);
  const given = url.searchParams.get("token");
  if (given === null) return;
  setToken(given);
  url.searchParams.delete("token");
  window.history.replaceState(null, "", url);
}

export function token() {
  return window.sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) window.sessionStorage.setItem(TOKEN_KEY, value);
  else window.sessionStorage.removeItem(TOKEN_KEY);
  features = null;
}

/** "/api/v1/x?a=1": parameters that are null, undefined or "" are left out. */
export function apiUrl(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined && value !== "") query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

export function csvUrl(path, params) {
  return apiUrl(path, { ...params, format: "csv" });
}

function headers(accept) {
  const out = { Accept: accept };
  const secret = token();
  if (secret) out.Authorization = `Bearer ${secret}`;
  return out;
}

async function failure(response) {
  if (response.status === 401 || response.status === 403) {
    return new AuthRequired(response.status === 401
      ? "This server asks for an access token."
      : "This token may not read that.");
  }
  let message = response.statusText;
  try {
    message = (await response.json()).error.message;
  } catch {
    // not the API's error shape: keep the status text
  }
  return new ApiFailure(response.status, message);
}

/** GET a JSON answer. */
export async function get(path, params) {
  const response = await fetch(apiUrl(path, params), { headers: headers("application/json") });
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** Download a CSV answer. A plain link does when there is no token; with one, the file is
 * fetched with the Authorization header and handed to the browser. */
export async function download(href, filename) {
  const response = await fetch(href, { headers: headers("text/csv") });
  if (!response.ok) throw await failure(response);
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

let features = null;

/**
 * The API's paths, from its OpenAPI document: a section whose endpoint is not there (the
 * analyses of a newer version, say) is left out, and nothing is asked that would be a 404.
 */
export async function paths() {
  if (features === null) {
    features = get("/api/openapi.json").then(
      (doc) => new Set(Object.keys(doc.paths || {})),
      (error) => {
        features = null;
        throw error;
      },
    );
  }
  return features;
}
