// DOM and formatting helpers. Every piece of data reaches the page as text nodes (never as
// HTML), so card text from an uploaded document cannot inject markup.

/**
 * h("button", {class: "btn", onclick: fn, "aria-label": "Close"}, "text", child, [more])
 * Keys: class, text, dataset, on<event> handlers, aria-* / data-* / role / for as attributes,
 * anything else set as a property (value, checked, disabled, hidden, type, id, ...).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key.startsWith("aria-") || key.startsWith("data-") || ["role", "for", "href", "tabindex", "colspan", "scope", "list", "title", "inputmode", "autocomplete", "accept", "form", "aria"].includes(key))
      el.setAttribute(key, value === true ? "" : String(value));
    else el[key] = value;
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

/** Sets textContent only when it changed (no needless DOM work on every tick). */
export function setText(el, text) {
  const value = String(text);
  if (el.textContent !== value) el.textContent = value;
}

const SVG_NS = "http://www.w3.org/2000/svg";
const ICONS = {
  check: "M5 12.5l4.2 4.2L19 7",
  cross: "M6 6l12 12M18 6L6 18",
  chevron: "M9 6l6 6-6 6",
  upload: "M12 16V4m0 0l-4.5 4.5M12 4l4.5 4.5M4 15v3a2 2 0 002 2h12a2 2 0 002-2v-3",
  play: "M7 5l12 7-12 7z",
  stop: "M7 7h10v10H7z",
  retry: "M4 12a8 8 0 0113.7-5.6L20 8.7M20 4v4.7h-4.7M20 12a8 8 0 01-13.7 5.6L4 15.3M4 20v-4.7h4.7",
  download: "M12 4v11m0 0l-4.5-4.5M12 15l4.5-4.5M4 17v1a2 2 0 002 2h12a2 2 0 002-2v-1",
  file: "M7 3h7l5 5v13H7zM14 3v5h5",
  warn: "M12 4l9 16H3zM12 10v4m0 3v.5",
  key: "M14.5 9.5a4 4 0 10-3.2 3.9L13 15h2v2h2v2h3v-3l-5.4-5.4a4 4 0 00-.1-1.1z",
};

/** A small stroked icon, hidden from assistive technology (its control carries the label). */
export function icon(name, cls = "") {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("fill", "none");
  svg.setAttribute("stroke", "currentColor");
  svg.setAttribute("stroke-width", "2");
  svg.setAttribute("stroke-linecap", "round");
  svg.setAttribute("stroke-linejoin", "round");
  if (cls) svg.setAttribute("class", cls);
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", ICONS[name] || ICONS.file);
  svg.append(path);
  return svg;
}

// ------------------------------------------------------------------------------ formatting

/** 5 → "5s", 65 → "1m 05s", 3725 → "1h 02m"; null → "–". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "–";
  const total = Math.max(0, Math.floor(seconds));
  const h_ = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h_) return `${h_}h ${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m ${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

export function count(value) {
  return Number(value || 0).toLocaleString("en-US");
}

/** $1.50, $0.50, $0.0123: cents when they say it all, four places for small LLM costs. */
export function cost(usd) {
  const value = Number(usd || 0);
  if (value >= 1 || Math.abs(value * 100 - Math.round(value * 100)) < 1e-9) return `$${value.toFixed(2)}`;
  return `$${value.toFixed(4)}`;
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function plural(n, word, many = `${word}s`) {
  return `${count(n)} ${n === 1 ? word : many}`;
}

export function clock(iso) {
  if (!iso) return "–";
  const date = iso instanceof Date ? iso : new Date(iso);
  return date.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function dateTime(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  const time = date.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
  if (sameDay) return `Today ${time}`;
  return `${date.toLocaleDateString("en-GB", { day: "numeric", month: "short" })} ${time}`;
}

export function shortId(id) {
  return String(id || "").slice(-8);
}

// The pipeline's shape as the server declares it (contracts/pipeline.py), served in the
// page's configuration: stage order, scopes and terminal statuses are never spelled here.
export const PIPELINE = JSON.parse(document.getElementById("cardflow-config")?.textContent || "{}").pipeline;
export const STAGES = PIPELINE.stages;
export const STAGE_LABEL = {
  pipeline: "Pipeline",
  analysis: "Analysis",
  epics: "Epics",
  stories: "Stories",
  subtasks: "Subtasks",
};
/** What an item of a stage is doing while it runs: "(3 analysing)", "(2 generating)". */
export function activity(stage) {
  return stage === "analysis" ? "analysing" : "generating";
}
export const TERMINAL = new Set(PIPELINE.terminal_run_statuses);
/** Item states and run statuses by name (ITEM.RUNNING, RUN.CANCELLING), as the server names them. */
export const ITEM = Object.freeze(PIPELINE.item_state);
export const RUN = Object.freeze(PIPELINE.run_status);
export const STATUS_LABEL = {
  [RUN.QUEUED]: "Queued",
  [RUN.RUNNING]: "Running",
  [RUN.CANCELLING]: "Cancelling",
  [RUN.SUCCEEDED]: "Succeeded",
  [RUN.PARTIAL]: "Partly failed",
  [RUN.FAILED]: "Failed",
  [RUN.CANCELLED]: "Cancelled",
};

export function statusBadge(status) {
  return h("span", { class: `status ${status}` }, STATUS_LABEL[status] || status);
}

// ------------------------------------------------------------------------------ announcements

let lastAnnounced = "";
/** Polite screen-reader announcement (the live region in the shell). */
export function announce(text) {
  const region = document.getElementById("announcer");
  if (!region || !text) return;
  // Same text twice would not be read again: clear first, then set on the next frame.
  region.textContent = "";
  lastAnnounced = text;
  requestAnimationFrame(() => {
    if (lastAnnounced === text) region.textContent = text;
  });
}

export function toast(text, kind = "") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const el = h("div", { class: `toast ${kind}` }, text);
  box.append(el);
  setTimeout(() => el.remove(), 6000);
}

/** A random UUID, also outside secure contexts (plain http to a non-local host). */
export function uuid() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
