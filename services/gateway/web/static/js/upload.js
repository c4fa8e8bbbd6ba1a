// Upload: several files at once, by the file picker or by drag and drop; each file gets its
// own row with a progress bar and its result (cards created, or the error in plain words).

import { plainError, uploadFile } from "./api.js";
import { announce, bytes, h, icon, plural, replace, setText } from "./dom.js";

/**
 * options: {projectId, config, big, onUploaded(result, file), onBatchDone(cardIds)}
 * Returns {el, setBig(big)}: `big` is the first-upload look of an empty project. Files are
 * uploaded at most `config.upload.max_concurrent` at a time.
 */
export function uploadZone({ projectId, config, big = false, onUploaded, onBatchDone }) {
  const limits = config.upload || {};
  const accept = (limits.extensions || [".md", ".txt", ".csv", ".json"]).join(",");
  const kinds = ".md, .txt, .csv or .json";
  const input = h("input", { type: "file", multiple: true, accept, hidden: true, "aria-label": "Files to upload" });
  const chooser = h(
    "button",
    { class: "btn primary", type: "button", onclick: () => input.click() },
    icon("upload"),
    "Choose files",
  );
  const list = h("ul", { class: "uploads", "aria-label": "Uploads" });
  const heading = h("strong", {});
  const after = h("div", { class: "after-upload" });
  const zone = h(
    "div",
    { class: `dropzone ${big ? "big" : ""}`, "data-testid": "dropzone" },
    icon("file", "icon"),
    h(
      "div",
      { class: "text" },
      heading,
      h(
        "span",
        {},
        `Drop ${kinds} files here, or choose them. Each section, row or item becomes a card` +
          (limits.max_file_bytes ? ` (up to ${bytes(limits.max_file_bytes)} a file).` : "."),
      ),
    ),
    chooser,
    input,
  );

  let depth = 0; // dragenter/leave fire for children too
  zone.addEventListener("dragenter", (e) => {
    e.preventDefault();
    depth += 1;
    zone.classList.add("over");
  });
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
  });
  zone.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.classList.remove("over");
  });
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    zone.classList.remove("over");
    start([...(e.dataTransfer?.files || [])]);
  });
  input.addEventListener("change", () => {
    start([...input.files]);
    input.value = "";
  });

  const queue = [];
  let running = 0;
  let batch = null;

  function start(files) {
    if (!files.length) return;
    batch ??= { pending: 0, cardIds: [], ok: 0, failed: 0 };
    replace(after);
    announce(`Uploading ${plural(files.length, "file")}.`);
    for (const file of files) {
      const row = uploadRow(file);
      list.prepend(row.el);
      batch.pending += 1;
      queue.push({ file, row });
    }
    pump();
  }

  function pump() {
    const max = Math.max(1, limits.max_concurrent || 3);
    while (running < max && queue.length) {
      const job = queue.shift();
      running += 1;
      send(job).finally(() => {
        running -= 1;
        batch.pending -= 1;
        if (!batch.pending) finishBatch();
        pump();
      });
    }
  }

  async function send({ file, row }) {
    if (limits.max_file_bytes && file.size > limits.max_file_bytes) {
      row.fail(`This file is ${bytes(file.size)}; the limit is ${bytes(limits.max_file_bytes)} a file. Split it and upload the parts.`);
      batch.failed += 1;
      return;
    }
    row.progress(0);
    try {
      const result = await uploadFile(projectId, file, (fraction) => row.progress(fraction));
      const n = result.cards?.length || 0;
      row.done(`${plural(n, "card")} created`);
      batch.ok += 1;
      batch.cardIds.push(...(result.cards || []));
      onUploaded?.(result, file);
    } catch (error) {
      row.fail(plainError(error));
      batch.failed += 1;
    }
  }

  function finishBatch() {
    const done = batch;
    batch = null;
    const words = [`${plural(done.ok, "file")} uploaded`];
    if (done.failed) words.push(`${plural(done.failed, "file")} failed`);
    announce(`${words.join(", ")}: ${plural(done.cardIds.length, "card")} created.`);
    if (done.cardIds.length) onBatchDone?.(done.cardIds, after);
  }

  function setBig(value) {
    zone.classList.toggle("big", value);
    setText(heading, value ? "Start with your requirements" : "Add requirements");
  }
  setBig(big);
  // The "run these new cards" suggestion goes once a run has started.
  const clearSuggestion = () => replace(after);
  return { el: h("div", { class: "upload-area" }, zone, list, after), setBig, clearSuggestion };
}

function uploadRow(file) {
  const mark = h("span", { class: "mark" }, icon("upload"));
  const fill = h("span", { class: "upload-progress" });
  const bar = h(
    "div",
    {
      class: "bar thin",
      role: "progressbar",
      "aria-label": `Upload of ${file.name}`,
      "aria-valuemin": 0,
      "aria-valuemax": 100,
      "aria-valuenow": 0,
    },
    fill,
  );
  const result = h("div", { class: "result", "data-testid": "upload-result" }, "Waiting to upload…");
  const el = h(
    "li",
    { class: "upload busy", "data-file": file.name },
    mark,
    h("span", { class: "name", title: file.name }, file.name),
    h("span", { class: "size" }, bytes(file.size)),
    bar,
    result,
  );
  return {
    el,
    progress(fraction) {
      const pct = Math.round(fraction * 100);
      fill.style.width = `${pct}%`;
      bar.setAttribute("aria-valuenow", String(pct));
      setText(result, pct < 100 ? `Uploading… ${pct}%` : "Splitting into cards…");
    },
    done(text) {
      el.className = "upload ok";
      bar.remove();
      replace(mark, icon("check"));
      result.className = "result ok";
      setText(result, text);
    },
    fail(text) {
      el.className = "upload err";
      bar.remove();
      replace(mark, icon("warn"));
      result.className = "result err";
      result.setAttribute("role", "alert");
      setText(result, text);
    },
  };
}
