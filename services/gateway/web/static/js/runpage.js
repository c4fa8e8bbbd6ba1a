// A run's page: its live panel, its log (RunLogger entries) with filters by level, item and
// text, and its items with state, attempts, tokens and errors.

import { api, plainError } from "./api.js";
import { ITEM, RUN, STAGE_LABEL, clock, cost, count, duration, h, replace, setText, shortId } from "./dom.js";
import { RunPanel } from "./progress.js";
import { focusHeading, setCrumbs, throttle } from "./shell.js";

const MAX_ROWS = 500;
const LEVELS = ["error", "warning", "info", "debug"];

export class RunPage {
  constructor(root, { projectId, runId }) {
    this.root = root;
    this.projectId = projectId;
    this.runId = runId;
    this.log = [];
    this.items = [];
    this.destroyed = false;
    this.reload = throttle(() => this.loadDetails(), 2000);
  }

  async start() {
    replace(this.root, h("p", { class: "loading" }, "Loading the run…"));
    let run;
    let project;
    try {
      [run, project] = await Promise.all([
        api(`/v1/runs/${encodeURIComponent(this.runId)}`),
        api(`/v1/projects/${encodeURIComponent(this.projectId)}`),
      ]);
    } catch (problem) {
      setCrumbs([["Projects", "/"], ["Not found", location.pathname]]);
      replace(
        this.root,
        h(
          "div",
          { class: "empty" },
          h("h1", {}, problem.status === 404 ? "No such run" : "The run cannot be shown"),
          h("p", {}, plainError(problem)),
          h("a", { class: "btn", href: "/", "data-link": true }, "All projects"),
        ),
      );
      return;
    }
    if (this.destroyed) return;
    const projectPath = `/projects/${encodeURIComponent(this.projectId)}`;
    const title = `${run.stage === "pipeline" ? "Pipeline" : STAGE_LABEL[run.stage]} run ${shortId(run.id)}`;
    setCrumbs([["Projects", "/"], [project.name, projectPath], [title, location.pathname]]);
    document.title = `${title} · ${project.name} · cardflow`;

    let lastVersion = run.version;
    this.panel = new RunPanel(run, {
      headingLevel: "h2",
      onChange: (fresh) => {
        if (fresh.version !== lastVersion) {
          lastVersion = fresh.version;
          this.reload();
        }
      },
    });

    this.level = h("select", { id: "log-level" }, h("option", { value: "" }, "All levels"), LEVELS.map((l) => h("option", { value: l }, l)));
    this.item = h("select", { id: "log-item" }, h("option", { value: "" }, "All items"));
    this.search = h("input", { type: "search", id: "log-search", placeholder: "Words in the message" });
    this.shown = h("p", { class: "muted small", "aria-live": "polite", "data-testid": "log-count" });
    this.logBody = h("tbody");
    this.itemsBody = h("tbody");
    for (const el of [this.level, this.item]) el.addEventListener("change", () => this.renderLog());
    this.search.addEventListener("input", () => this.renderLog());

    replace(
      this.root,
      h(
        "div",
        { class: "page-head" },
        h(
          "div",
          {},
          h("h1", {}, title),
          h("p", { class: "sub" }, `Started ${clock(run.created_at)} in `, h("a", { href: projectPath, "data-link": true }, project.name), optionsText(run)),
        ),
      ),
      this.panel.el,
      h(
        "section",
        { class: "section", "aria-labelledby": "log-title" },
        h("div", { class: "section-head" }, h("h2", { id: "log-title" }, "Run log"), this.shown),
        h(
          "div",
          { class: "log-filters" },
          h("div", { class: "field" }, h("label", { for: "log-level" }, "Level"), this.level),
          h("div", { class: "field grow" }, h("label", { for: "log-item" }, "Item"), this.item),
          h("div", { class: "field grow" }, h("label", { for: "log-search" }, "Search"), this.search),
        ),
        h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "log-table", "aria-labelledby": "log-title", "data-testid": "log" },
            h("thead", {}, h("tr", {}, ["Time", "Level", "Stage", "Item", "Message"].map((t) => h("th", { scope: "col" }, t)))),
            this.logBody,
          ),
        ),
      ),
      h(
        "section",
        { class: "section", "aria-labelledby": "items-title" },
        h("div", { class: "section-head" }, h("h2", { id: "items-title" }, "Items")),
        h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { "aria-labelledby": "items-title", "data-testid": "items" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Stage", "Item", "State", "Attempts", "Tokens", "Took", "Error"].map((t, i) =>
                  h("th", { scope: "col", class: [3, 4, 5].includes(i) ? "num" : "" }, t),
                ),
              ),
            ),
            this.itemsBody,
          ),
        ),
      ),
    );
    focusHeading();
    await this.loadDetails();
  }

  async loadDetails() {
    if (this.destroyed) return;
    try {
      const base = `/v1/runs/${encodeURIComponent(this.runId)}`;
      const [log, items] = await Promise.all([api(`${base}/log`), api(`${base}/items`)]);
      this.log = log.log;
      this.items = items.items;
    } catch (problem) {
      setText(this.shown, plainError(problem));
      return;
    }
    this.titles = new Map(this.items.map((i) => [i.item_id, i.title]));
    this.renderItemFilter();
    this.renderLog();
    this.renderItems();
  }

  renderItemFilter() {
    const wanted = this.item.value;
    const ids = [...new Set(this.log.map((e) => e.item).filter(Boolean))];
    const key = ids.join("|");
    if (this.item.dataset.key === key) return;
    this.item.dataset.key = key;
    replace(
      this.item,
      h("option", { value: "" }, "All items"),
      ids.map((id) => h("option", { value: id, selected: id === wanted }, this.titles.get(id) || id)),
    );
  }

  renderLog() {
    const level = this.level.value;
    const item = this.item.value;
    const words = this.search.value.trim().toLowerCase();
    const rows = this.log.filter(
      (e) =>
        (!level || e.level === level) &&
        (!item || e.item === item) &&
        (!words || `${e.message} ${this.titles.get(e.item) || ""}`.toLowerCase().includes(words)),
    );
    const shown = rows.slice(-MAX_ROWS);
    setText(
      this.shown,
      rows.length === this.log.length
        ? `${count(this.log.length)} entries`
        : `${count(rows.length)} of ${count(this.log.length)} entries match`,
    );
    replace(
      this.logBody,
      shown.length
        ? shown.map((e) =>
            h(
              "tr",
              { "data-level": e.level, "data-item": e.item || "" },
              h("td", { class: "time" }, clock(e.time)),
              h("td", {}, h("span", { class: `level ${e.level}` }, e.level)),
              h("td", {}, STAGE_LABEL[e.stage] || e.stage || "–"),
              h("td", {}, e.item ? this.titles.get(e.item) || e.item : "–"),
              h("td", {}, e.message),
            ),
          )
        : h("tr", {}, h("td", { colspan: 5, class: "muted" }, this.log.length ? "No entry matches these filters." : "Nothing logged yet.")),
    );
  }

  renderItems() {
    replace(
      this.itemsBody,
      this.items.map((i) => {
        const took = i.started_at && i.finished_at ? (new Date(i.finished_at) - new Date(i.started_at)) / 1000 : null;
        return h(
          "tr",
          { "data-item-id": i.item_id },
          h("td", {}, STAGE_LABEL[i.stage] || i.stage),
          h("td", {}, i.title),
          h("td", {}, h("span", { class: `status ${itemStatus(i.state)}` }, i.state)),
          h("td", { class: "num" }, String(i.attempts)),
          h("td", { class: "num" }, count(i.tokens_so_far || (i.provenance ? i.provenance.input_tokens + i.provenance.output_tokens : 0))),
          h("td", { class: "num" }, took === null ? "–" : duration(took)),
          h("td", {}, i.error ? h("span", {}, h("span", { class: `badge code ${i.error.code === "cancelled" ? "cancelled" : ""}` }, i.error.code), " ", i.error.message || "") : ""),
        );
      }),
    );
  }

  tick() {
    this.panel?.tick();
  }

  destroy() {
    this.destroyed = true;
    this.reload.cancel();
    this.panel?.destroy();
  }
}

function itemStatus(state) {
  const shown = [ITEM.SUCCEEDED, ITEM.FAILED, ITEM.CANCELLED, ITEM.RUNNING];
  return shown.includes(state) ? state : RUN.QUEUED;
}

function optionsText(run) {
  const o = run.options || {};
  const parts = [];
  if (["pipeline", "subtasks"].includes(run.stage) && o.subtasks) {
    const s = o.subtasks;
    parts.push(`${s.min_per_story}–${s.max_per_story} subtasks per story`);
    if (!s.include_tests) parts.push("no test tasks");
    if (!s.include_docs) parts.push("no docs tasks");
  }
  if (o.budget_usd) parts.push(`budget ${cost(o.budget_usd)}`);
  return parts.length ? ` · ${parts.join(", ")}` : "";
}

