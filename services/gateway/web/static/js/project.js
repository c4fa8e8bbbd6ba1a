// A project's page: KPI strip, upload, a live progress panel per active run, the run dialog,
// exports, and tabs for epics, stories, subtasks, cards, the quality report, the open
// questions and runs.

import { api, downloadExport, plainError } from "./api.js";
import { cardsView, epicsView, requirementIndex, storiesView, subtasksView } from "./backlog.js";
import { STAGE_LABEL, TERMINAL, announce, count, cost, dateTime, duration, h, icon, plural, replace, setText, statusBadge, toast } from "./dom.js";
import { RunPanel } from "./progress.js";
import { QUESTIONS_PAGE, qualityView, questionsView } from "./quality.js";
import { openRunDialog } from "./rundialog.js";
import { focusHeading, setCrumbs, throttle } from "./shell.js";
import { uploadZone } from "./upload.js";

const TABS = [
  ["epics", "Epics"],
  ["stories", "Stories"],
  ["subtasks", "Subtasks"],
  ["cards", "Cards"],
  ["quality", "Quality"],
  ["questions", "Questions"],
  ["runs", "Runs"],
];
const REFRESH_EVERY_MS = 10_000; // also finds runs started elsewhere (the CLI, another tab)
const REFRESH_WHILE_RUNNING_MS = 2_500;

export class ProjectPage {
  constructor(root, { projectId, tab, config }) {
    this.root = root;
    this.projectId = projectId;
    this.config = config;
    this.tab = TABS.some(([t]) => t === tab) ? tab : "epics";
    this.panels = new Map(); // run id -> RunPanel
    this.dismissed = new Set();
    this.data = { project: null, cards: [], storyGroups: [], epics: null, subtaskGroups: null, runs: null, quality: null, questions: null };
    this.rendered = {}; // tab -> JSON of what it shows, to redraw only on change
    this.destroyed = false;
    this.refreshSoon = throttle(() => this.refresh(), REFRESH_WHILE_RUNNING_MS);
  }

  get base() {
    return `/v1/projects/${encodeURIComponent(this.projectId)}`;
  }

  async start() {
    replace(this.root, h("p", { class: "loading" }, "Loading the project…"));
    try {
      await this.refresh({ first: true });
    } catch (problem) {
      setCrumbs([["Projects", "/"], ["Not found", location.pathname]]);
      replace(
        this.root,
        h(
          "div",
          { class: "empty" },
          h("h1", {}, problem.status === 404 ? "No such project" : "The project cannot be shown"),
          h("p", {}, plainError(problem)),
          h("a", { class: "btn", href: "/", "data-link": true }, "All projects"),
        ),
      );
      return;
    }
    // A tab nobody looks at does not poll the project (its runs' panels still follow them).
    this.timer = setInterval(() => document.hidden || this.refresh().catch(() => {}), REFRESH_EVERY_MS);
  }

  destroy() {
    this.destroyed = true;
    clearInterval(this.timer);
    this.refreshSoon.cancel();
    for (const panel of this.panels.values()) panel.destroy();
  }

  tick() {
    for (const panel of this.panels.values()) panel.tick();
  }

  // ---------------------------------------------------------------------------- data

  async refresh({ first = false } = {}) {
    if (this.destroyed) return;
    const [project, cards, stories] = await Promise.all([
      api(this.base),
      api(`${this.base}/cards`),
      api(`${this.base}/stories`),
    ]);
    if (this.destroyed) return;
    this.data.project = project;
    this.data.cards = cards.cards;
    this.data.storyGroups = stories.epics;
    if (first) this.layout();
    this.renderHead();
    this.renderKpis();
    this.syncPanels(project.active_runs || []);
    await this.loadTab(this.tab);
  }

  async loadTab(tab) {
    const d = this.data;
    if (tab === "epics") d.epics = (await api(`${this.base}/epics`)).epics;
    if (tab === "subtasks") d.subtaskGroups = (await api(`${this.base}/subtasks`)).epics;
    if (tab === "runs") d.runs = (await api(`${this.base}/runs`)).runs;
    if (tab === "quality") d.quality = await api(`${this.base}/quality`);
    if (tab === "questions") d.questions = await api(`${this.base}/questions?limit=${QUESTIONS_PAGE}`);
    if (!this.destroyed) this.renderTab(tab);
  }

  // ---------------------------------------------------------------------------- layout

  layout() {
    const p = this.data.project;
    setCrumbs([["Projects", "/"], [p.name, location.pathname]]);
    document.title = `${p.name} · cardflow`;
    this.title = h("h1", {}, p.name);
    this.sub = h("p", { class: "sub" });
    this.kpis = h("ul", { class: "card kpis", "aria-label": "Key figures", "data-testid": "kpis" });
    this.runsLive = h("div", { class: "runs-live", "data-testid": "runs-live" });
    this.runsSection = h(
      "section",
      { class: "section", "aria-labelledby": "live-title", hidden: true },
      h("div", { class: "section-head" }, h("h2", { id: "live-title" }, "Progress")),
      this.runsLive,
    );
    this.uploadSlot = h("section", { class: "section", "aria-label": "Upload documents" });

    const exportButtons = [
      ["json", "JSON"],
      ["csv", "CSV"],
      ["markdown", "Markdown"],
    ].map(([format, label]) =>
      h(
        "button",
        {
          class: "btn small",
          type: "button",
          "aria-label": `Export the backlog as ${label}`,
          onclick: async () => {
            try {
              const name = await downloadExport(this.projectId, format);
              toast(`Downloaded ${name}`);
            } catch (problem) {
              toast(plainError(problem), "err");
            }
          },
        },
        icon("download"),
        label,
      ),
    );
    this.runButton = h(
      "button",
      { class: "btn primary", type: "button", onclick: () => this.openDialog() },
      icon("play"),
      "Run…",
    );

    this.tabButtons = {};
    this.tabPanels = {};
    this.tabHeadings = {};
    const tablist = h("div", { class: "tablist", role: "tablist", "aria-label": "Backlog and history" });
    for (const [key, label] of TABS) {
      const button = h(
        "button",
        {
          class: "tab",
          type: "button",
          role: "tab",
          id: `tab-${key}`,
          "aria-controls": `panel-${key}`,
          "aria-selected": String(key === this.tab),
          tabindex: key === this.tab ? "0" : "-1",
          onclick: () => this.selectTab(key),
        },
        label,
        h("span", { class: "count", "aria-hidden": "true" }),
      );
      button.addEventListener("keydown", (event) => this.tabKeys(event, key));
      this.tabButtons[key] = button;
      tablist.append(button);
      this.tabPanels[key] = h("div", {
        class: "tabpanel",
        role: "tabpanel",
        id: `panel-${key}`,
        "aria-labelledby": `tab-${key}`,
        tabindex: "0",
        hidden: key !== this.tab,
      });
      // The panel's own (visually hidden) h2 keeps the heading outline h1 > h2 > h3.
      this.tabHeadings[key] = h("h2", { class: "sr-only" }, label);
    }

    replace(
      this.root,
      h(
        "div",
        { class: "page-head" },
        h("div", {}, this.title, this.sub),
        h(
          "div",
          { class: "actions" },
          this.runButton,
          h("div", { class: "export-group", role: "group", "aria-label": "Export" }, h("span", { "aria-hidden": "true" }, "Export"), exportButtons),
        ),
      ),
      this.kpis,
      this.runsSection,
      this.uploadSlot,
      h("div", { class: "tabs" }, tablist, Object.values(this.tabPanels)),
    );
    this.renderUpload();
    focusHeading();
  }

  renderHead() {
    const p = this.data.project;
    setText(this.title, p.name);
    setText(this.sub, p.description || `Created ${dateTime(p.created_at)}`);
  }

  renderUpload() {
    const big = !this.data.project.kpis.cards;
    if (this.upload) return this.upload.setBig(big);
    // Made once: its list keeps each file's result while the page lives.
    this.upload = uploadZone({
      projectId: this.projectId,
      config: this.config,
      big,
      onUploaded: () => this.refreshSoon(),
      onBatchDone: (cardIds, slot) => {
        this.refresh().catch(() => {});
        replace(
          slot,
          h(
            "p",
            {},
            h(
              "button",
              { class: "btn", type: "button", onclick: () => this.openDialog({ stage: "pipeline", cardIds }) },
              icon("play"),
              `Run the pipeline on the ${plural(cardIds.length, "new card")}…`,
            ),
          ),
        );
      },
    });
    replace(this.uploadSlot, this.upload.el);
  }

  renderKpis() {
    const k = this.data.project.kpis;
    // The gateway counts coverage (its quality report's count): the author's requirements a
    // story that is not junk cites.
    const cov = k.stories && k.requirements ? { covered: k.requirements_covered, total: k.requirements } : null;
    const pct = cov ? Math.round((100 * cov.covered) / cov.total) : null;
    const tiles = [
      ["cards", "Cards", count(k.cards), k.cards ? "" : "upload a document"],
      ["analysed", "Analysed", count(k.cards_analyzed), k.cards ? `of ${count(k.cards)}` : ""],
      ["epics", "Epics", count(k.epics), ""],
      ["stories", "Stories", count(k.stories), ""],
      ["subtasks", "Subtasks", count(k.subtasks), ""],
      [
        "coverage",
        "Coverage",
        pct === null ? "–" : `${pct}%`,
        cov ? `${count(cov.covered)} of ${plural(cov.total, "requirement")}` : "known once stories exist",
      ],
    ];
    const key = JSON.stringify(tiles);
    if (this.kpis.dataset.key !== key) {
      this.kpis.dataset.key = key;
      replace(
        this.kpis,
        tiles.map(([id, label, value, note]) =>
          h(
            "li",
            { class: "kpi", "data-kpi": id },
            h("div", { class: "label" }, label),
            h("div", { class: "value" }, value),
            h("div", { class: "note" }, note || "\u00a0"),
          ),
        ),
      );
    }
    const counts = { epics: k.epics, stories: k.stories, subtasks: k.subtasks, cards: k.cards, runs: this.data.runs?.length, questions: this.data.questions?.total };
    for (const [tab] of TABS) {
      const el = this.tabButtons[tab].querySelector(".count");
      el.hidden = counts[tab] === undefined;
      setText(el, counts[tab] === undefined ? "" : count(counts[tab]));
    }
    this.renderUpload();
  }

  // ---------------------------------------------------------------------------- runs

  async syncPanels(active) {
    for (const ref of active) {
      if (this.panels.has(ref.id) || this.dismissed.has(ref.id)) continue;
      try {
        this.addPanel(await api(`/v1/runs/${encodeURIComponent(ref.id)}`));
      } catch {
        /* it will be found on the next refresh */
      }
    }
  }

  addPanel(run) {
    if (this.panels.has(run.id) || this.destroyed) return this.panels.get(run.id);
    let lastVersion = run.version;
    let lastStatus = run.status;
    const panel = new RunPanel(run, {
      dismissible: true,
      detailsLink: `/projects/${encodeURIComponent(this.projectId)}/runs/${encodeURIComponent(run.id)}`,
      onDismiss: () => {
        this.panels.delete(run.id);
        this.dismissed.add(run.id);
        this.runsSection.hidden = this.panels.size === 0;
      },
      onChange: (fresh) => {
        if (fresh.version === lastVersion && fresh.status === lastStatus) return;
        const ended = TERMINAL.has(fresh.status) && !TERMINAL.has(lastStatus);
        lastVersion = fresh.version;
        lastStatus = fresh.status;
        // Results land as items finish: the KPIs and the open tab follow the run.
        if (ended) this.refresh().catch(() => {});
        else this.refreshSoon();
      },
    });
    this.panels.set(run.id, panel);
    this.runsLive.prepend(panel.el);
    this.runsSection.hidden = false;
    return panel;
  }

  openDialog(preset = {}) {
    openRunDialog(
      { projectId: this.projectId, cards: this.data.cards, storyGroups: this.data.storyGroups, config: this.config },
      preset,
      (run) => {
        this.dismissed.delete(run.id);
        this.upload?.clearSuggestion();
        const panel = this.addPanel(run);
        announce(`${run.stage === "pipeline" ? "Pipeline" : STAGE_LABEL[run.stage]} run started: ${plural(run.counts.total, "item")} to do.`);
        panel?.el.scrollIntoView({ behavior: "smooth", block: "nearest" });
        this.refreshSoon();
      },
    );
  }

  // ---------------------------------------------------------------------------- tabs

  tabKeys(event, key) {
    const keys = TABS.map(([t]) => t);
    const at = keys.indexOf(key);
    const next = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: keys.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    const target = keys[(next + keys.length) % keys.length];
    this.selectTab(target);
    this.tabButtons[target].focus();
  }

  selectTab(tab) {
    if (tab === this.tab) return;
    // A hidden tab keeps no DOM (a big backlog is thousands of nodes); its data stays, and it
    // is drawn again when selected.
    replace(this.tabPanels[this.tab]);
    delete this.rendered[this.tab];
    this.tab = tab;
    for (const [key] of TABS) {
      const selected = key === tab;
      this.tabButtons[key].setAttribute("aria-selected", String(selected));
      this.tabButtons[key].tabIndex = selected ? 0 : -1;
      this.tabPanels[key].hidden = !selected;
    }
    const url = new URL(location.href);
    url.searchParams.set("tab", tab);
    history.replaceState(null, "", url.pathname + url.search);
    if (!this.rendered[tab]) replace(this.tabPanels[tab], h("p", { class: "loading" }, "Loading…"));
    this.loadTab(tab).catch((problem) => replace(this.tabPanels[tab], h("p", { class: "notice" }, plainError(problem))));
  }

  renderTab(tab) {
    const d = this.data;
    const epicsForIndex = d.storyGroups.map((g) => g.epic);
    const source = {
      epics: d.epics,
      stories: d.storyGroups,
      subtasks: d.subtaskGroups,
      cards: d.cards,
      runs: d.runs,
      quality: d.quality,
      questions: d.questions,
    }[tab];
    if (source === null || source === undefined) return;
    const key = JSON.stringify(source);
    if (this.rendered[tab] === key) return;
    this.rendered[tab] = key;
    const index = requirementIndex(d.cards, epicsForIndex.concat(d.epics || []));
    const runAction = () =>
      d.project.kpis.cards
        ? h("button", { class: "btn primary", type: "button", onclick: () => this.openDialog() }, icon("play"), "Run…")
        : null;
    const panel = this.tabPanels[tab];
    const keep = uiState(panel);
    let view;
    if (tab === "epics") view = epicsView(d.epics, index, runAction);
    else if (tab === "stories") view = storiesView(d.storyGroups, index, runAction);
    else if (tab === "subtasks") view = subtasksView(d.subtaskGroups, index, runAction);
    else if (tab === "cards") view = cardsView(d.cards, null);
    else if (tab === "quality") view = qualityView(d.quality);
    else if (tab === "questions") view = questionsView(d.questions, this.base);
    else view = this.runsView(d.runs);
    replace(panel, this.tabHeadings[tab], view);
    restoreUiState(panel, keep);
    if (tab === "runs") setText(this.tabButtons.runs.querySelector(".count"), count(d.runs.length));
    this.tabButtons.runs.querySelector(".count").hidden = d.runs === null;
    if (tab === "questions") setText(this.tabButtons.questions.querySelector(".count"), count(d.questions.total));
    this.tabButtons.questions.querySelector(".count").hidden = d.questions === null;
  }

  runsView(runs) {
    if (!runs.length)
      return h(
        "div",
        { class: "empty" },
        h("h3", {}, "No runs yet"),
        h("p", {}, "Every run of this project is listed here with its outcome, cost and log."),
      );
    return h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "runs-table", "aria-label": "Run history", "data-testid": "runs" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Started", "Run", "Status", "Items done", "Took", "Cost", ""].map((label, i) =>
              h("th", { scope: "col", class: [3, 4, 5].includes(i) ? "num" : "" }, label || h("span", { class: "sr-only" }, "Details")),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          runs.map((run) =>
            h(
              "tr",
              { "data-run-id": run.id },
              h("td", {}, dateTime(run.created_at)),
              h("td", {}, h("span", { class: "stage-name" }, STAGE_LABEL[run.stage] || run.stage)),
              h("td", {}, statusBadge(run.status)),
              h("td", { class: "num" }, `${count(run.counts.succeeded)} / ${count(run.counts.total)}`),
              h("td", { class: "num" }, duration(run.elapsed_seconds)),
              h("td", { class: "num" }, cost(run.usage?.cost_usd)),
              h(
                "td",
                {},
                h(
                  "a",
                  { href: `/projects/${encodeURIComponent(this.projectId)}/runs/${encodeURIComponent(run.id)}`, "data-link": true, "aria-label": `Log and items of the ${STAGE_LABEL[run.stage] || run.stage} run of ${dateTime(run.created_at)}` },
                  "Log and items",
                ),
              ),
            ),
          ),
        ),
      ),
    );
  }
}

/** Which rows are expanded and which details are open, to keep them across a redraw. */
function uiState(root) {
  return {
    expanded: new Set([...root.querySelectorAll("[aria-expanded=true]")].map((b) => b.getAttribute("aria-controls"))),
    open: new Set([...root.querySelectorAll("details[open]")].map(detailsKey)),
    focus: document.activeElement && root.contains(document.activeElement) ? document.activeElement.getAttribute("aria-controls") : null,
  };
}

function restoreUiState(root, state) {
  for (const button of root.querySelectorAll("[aria-controls]")) {
    if (state.expanded.has(button.getAttribute("aria-controls"))) button.click();
  }
  for (const details of root.querySelectorAll("details")) {
    if (state.open.has(detailsKey(details))) details.open = true;
  }
  if (state.focus) root.querySelector(`[aria-controls="${CSS.escape(state.focus)}"]`)?.focus();
}

function detailsKey(details) {
  const owner = details.closest("[data-epic-id],[data-story-id],[data-card-id]");
  return `${owner?.dataset.epicId || ""}|${owner?.dataset.storyId || ""}|${owner?.dataset.cardId || ""}|${details.querySelector("summary")?.textContent || ""}`;
}

