// The page's only way to the server: the public /v1 API with the user's key.
//
// The key lives in sessionStorage: it stays while the tab is open (reloads included) and is
// gone when the tab closes; it never goes into a cookie, so no other site can make the
// browser send it (no CSRF), and the server never puts it into a page. A link of the form
// /#key=... hands a key to the page through the URL's fragment, which browsers never send to
// a server; the page stores it and removes it from the address bar at once.

const KEY_ITEM = "cardflow.apiKey";

export const session = {
  get key() {
    try {
      return sessionStorage.getItem(KEY_ITEM) || "";
    } catch {
      return memoryKey;
    }
  },
  set(key) {
    memoryKey = key;
    try {
      sessionStorage.setItem(KEY_ITEM, key);
    } catch {
      /* storage disabled: the key lives as long as the page */
    }
  },
  clear() {
    memoryKey = "";
    try {
      sessionStorage.removeItem(KEY_ITEM);
    } catch {
      /* nothing stored */
    }
  },
};
let memoryKey = "";

/** Takes a key from a `#key=...` fragment, if any, and strips it from the URL. */
export function adoptKeyFromFragment() {
  const match = /^#key=([^&]+)/.exec(location.hash);
  if (!match) return false;
  session.set(decodeURIComponent(match[1]).trim());
  history.replaceState(history.state, "", location.pathname + location.search);
  return true;
}

export class ApiError extends Error {
  constructor(status, code, detail, body) {
    super(detail || code);
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.body = body;
  }
}

/** Listeners told when the key is refused (401): the page then asks for another. */
const unauthorizedListeners = new Set();
export function onUnauthorized(fn) {
  unauthorizedListeners.add(fn);
}

function authHeaders(extra = {}) {
  return { Authorization: `Bearer ${session.key}`, ...extra };
}

async function problemOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON: a proxy's page */
  }
  const code = body?.code || `http_${response.status}`;
  const detail = body?.detail || body?.title || response.statusText || "The request failed.";
  return new ApiError(response.status, code, detail, body);
}

function unreachable(error) {
  return new ApiError(0, "unreachable", "The gateway does not answer. Is cardflow running?", error);
}

/** JSON request; throws ApiError (status 0 when the gateway is unreachable). */
export async function api(path, { method = "GET", body, headers = {}, signal } = {}) {
  const init = { method, headers: authHeaders(headers), signal, cache: "no-store" };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw unreachable(error);
  }
  if (!response.ok) {
    const problem = await problemOf(response);
    if (response.status === 401) unauthorizedListeners.forEach((fn) => fn(problem));
    throw problem;
  }
  return response.status === 204 ? null : response.json();
}

/**
 * One long poll of a run: resolves {run, etag} when it changed, {run: null, etag} when not
 * (304 after `waitS` seconds). The ETag makes an unchanged answer empty and cheap.
 */
export async function pollRun(runId, etag, waitS, signal) {
  const headers = authHeaders();
  if (etag) headers["If-None-Match"] = etag;
  const url = `/v1/runs/${encodeURIComponent(runId)}${waitS ? `?wait=${waitS}` : ""}`;
  let response;
  try {
    response = await fetch(url, { headers, signal, cache: "no-store" });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw unreachable(error);
  }
  if (response.status === 304) return { run: null, etag };
  if (!response.ok) {
    const problem = await problemOf(response);
    if (response.status === 401) unauthorizedListeners.forEach((fn) => fn(problem));
    throw problem;
  }
  const run = await response.json();
  return { run, etag: response.headers.get("ETag") || `"v${run.version}"` };
}

/**
 * Uploads one file with progress (XMLHttpRequest: fetch reports no upload progress).
 * onProgress(fraction) while sending; resolves the 202 body; rejects with ApiError.
 */
export function uploadFile(projectId, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/v1/projects/${encodeURIComponent(projectId)}/uploads`);
    xhr.setRequestHeader("Authorization", `Bearer ${session.key}`);
    xhr.responseType = "json";
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.upload.onload = () => onProgress(1);
    xhr.onerror = () => reject(unreachable(null));
    xhr.onload = () => {
      const body = xhr.response;
      if (xhr.status >= 200 && xhr.status < 300) return resolve(body);
      const code = body?.code || `http_${xhr.status}`;
      const problem = new ApiError(xhr.status, code, body?.detail || body?.title || xhr.statusText, body);
      if (xhr.status === 401) unauthorizedListeners.forEach((fn) => fn(problem));
      reject(problem);
    };
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

/** Downloads the backlog export (needs the key, so no plain link) and saves it as a file. */
export async function downloadExport(projectId, format) {
  let response;
  try {
    response = await fetch(`/v1/projects/${encodeURIComponent(projectId)}/export?format=${format}`, {
      headers: authHeaders(),
      cache: "no-store",
    });
  } catch (error) {
    throw unreachable(error);
  }
  if (!response.ok) throw await problemOf(response);
  const disposition = response.headers.get("Content-Disposition") || "";
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] || `backlog.${format}`;
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return name;
}

/** A problem in plain words for people (the server's detail is already written for them). */
export function plainError(error) {
  if (!(error instanceof ApiError)) return "Something went wrong in the page. Reload it and try again.";
  if (error.status === 0) return error.detail;
  if (error.status === 401) return "The API key was refused. Enter a valid key.";
  return error.detail || "The request failed.";
}
