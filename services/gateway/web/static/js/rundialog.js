// The run dialog: what to run (one stage or the whole pipeline), over what (everything, or
// chosen cards / epics / stories), with which options (subtasks per story, test and docs
// tasks, budget). Models are set on the server; the dialog shows which each stage uses.

import { api, plainError } from "./api.js";
import { PIPELINE, STAGE_LABEL, count, h, plural, replace, setText, uuid } from "./dom.js";

const STAGE_CHOICES = [
  ["pipeline", "Whole pipeline", "Analysis → epics → stories → subtasks"],
  ["analysis", "Analysis", "Cards → requirements"],
  ["epics", "Epics", "Analysed cards → epics"],
  ["stories", "Stories", "Epics → user stories"],
  ["subtasks", "Subtasks", "Stories → subtasks"],
];
const SCOPE_OF = PIPELINE.scope;
const SCOPE_FIELD = { cards: "card_ids", epics: "epic_ids", stories: "story_ids" };

/**
 * data: {projectId, cards, storyGroups: [{epic, stories}], config}
 * preset: {stage, cardIds}; onStarted(run) after the 202.
 */
export function openRunDialog(data, preset = {}, onStarted = () => {}) {
  const idempotencyKey = uuid(); // one per dialog: a double submit starts one run
  const { cards = [], storyGroups = [], config = {} } = data;
  const epics = storyGroups.map((g) => g.epic);
  const stories = storyGroups.flatMap((g) => g.stories.map((s) => ({ ...s, epicTitle: g.epic.title })));
  const analysed = cards.filter((c) => c.analysis_status === "analyzed");
  const available = {
    pipeline: cards.length ? "" : "needs cards",
    analysis: cards.length ? "" : "needs cards",
    epics: analysed.length ? "" : "needs analysed cards",
    stories: epics.length ? "" : "needs epics",
    subtasks: stories.length ? "" : "needs stories",
  };
  const firstAvailable = STAGE_CHOICES.find(([s]) => !available[s])?.[0] || "pipeline";
  let stage = preset.stage && !available[preset.stage] ? preset.stage : firstAvailable;
  const chosen = { cards: new Set(preset.cardIds || []), epics: new Set(), stories: new Set() };

  const error = h("div", { class: "form-error", role: "alert" });
  const summary = h("span", { class: "summary" });

  // --- stage
  const stageInputs = STAGE_CHOICES.map(([value, label, hint]) => {
    const input = h("input", { type: "radio", name: "stage", value, checked: value === stage, disabled: !!available[value] });
    input.addEventListener("change", () => {
      stage = value;
      refresh();
    });
    return h(
      "label",
      { class: "choice" },
      input,
      h("span", {}, label, h("small", {}, available[value] ? `${hint} (${available[value]})` : hint)),
    );
  });

  // --- scope
  const scopeAll = h("input", { type: "radio", name: "scope", value: "all", checked: !preset.cardIds?.length });
  const scopeSome = h("input", { type: "radio", name: "scope", value: "some", checked: !!preset.cardIds?.length });
  const scopeAllLabel = h("span");
  const scopeSomeLabel = h("span");
  const filter = h("input", { type: "search", placeholder: "Filter by title", "aria-label": "Filter the list" });
  const pickList = h("ul", { "aria-label": "Items to include" });
  const pickCount = h("span", { class: "muted small", "aria-live": "polite" });
  const selectAll = h("button", { class: "btn small", type: "button" }, "Select shown");
  const selectNone = h("button", { class: "btn small ghost", type: "button" }, "Clear");
  const picker = h("div", { class: "scope-picker" }, h("div", { class: "tools" }, filter, selectAll, selectNone, pickCount), pickList);
  for (const el of [scopeAll, scopeSome]) el.addEventListener("change", refresh);
  filter.addEventListener("input", renderPicker);
  selectAll.addEventListener("click", () => {
    for (const box of pickList.querySelectorAll("input[type=checkbox]")) {
      box.checked = true;
      chosen[SCOPE_OF[stage]].add(box.value);
    }
    refreshSummary();
  });
  selectNone.addEventListener("click", () => {
    chosen[SCOPE_OF[stage]].clear();
    renderPicker();
  });

  // --- options
  const minInput = h("input", { type: "number", id: "opt-min", min: 1, max: 20, value: 3, inputmode: "numeric" });
  const maxInput = h("input", { type: "number", id: "opt-max", min: 1, max: 20, value: 6, inputmode: "numeric" });
  const tests = h("input", { type: "checkbox", id: "opt-tests", checked: true });
  const docs = h("input", { type: "checkbox", id: "opt-docs", checked: true });
  const budget = h("input", { type: "number", id: "opt-budget", min: 0.01, step: 0.01, placeholder: "no limit", inputmode: "decimal" });
  const subtaskOptions = h(
    "fieldset",
    {},
    h("legend", {}, "Subtasks"),
    h(
      "div",
      { class: "inline-fields" },
      h("div", { class: "field" }, h("label", { for: "opt-min" }, "At least, per story"), minInput),
      h("div", { class: "field" }, h("label", { for: "opt-max" }, "At most, per story"), maxInput),
    ),
    h(
      "div",
      { class: "option-checks" },
      h("label", { class: "check", for: "opt-tests" }, tests, h("span", {}, "Include test tasks")),
      h("label", { class: "check", for: "opt-docs" }, docs, h("span", {}, "Include docs tasks")),
    ),
  );

  const models = config.models || {};
  const modelInfo = h(
    "div",
    { class: "models" },
    config.provider === "offline"
      ? h("p", {}, "No LLM is configured: the offline provider drafts from the text itself (no cost).")
      : h(
          "p",
          {},
          config.stage_models_configured
            ? "Models per stage, as configured on the server:"
            : "Every stage uses the server's model (a model per stage is set with CARDFLOW_LLM_STAGE_MODELS):",
        ),
    config.provider === "offline"
      ? null
      : h("dl", {}, Object.entries(models).map(([s, m]) => [h("dt", {}, STAGE_LABEL[s] || s), h("dd", {}, m)])),
  );

  const submit = h("button", { class: "btn primary", type: "submit" }, "Start run");
  const cancel = h("button", { class: "btn", type: "button", value: "cancel" }, "Cancel");
  const form = h(
    "form",
    { method: "dialog", noValidate: true },
    h(
      "div",
      { class: "dialog-head" },
      h("h2", { id: "run-dialog-title" }, "Start a run"),
      h("p", {}, "Progress shows on the project page as soon as the run starts."),
    ),
    h(
      "div",
      { class: "dialog-body" },
      h("fieldset", {}, h("legend", {}, "What to run"), h("div", { class: "choices" }, stageInputs)),
      h(
        "fieldset",
        {},
        h("legend", {}, "Scope"),
        h(
          "div",
          { class: "option-checks" },
          h("label", { class: "check" }, scopeAll, scopeAllLabel),
          h("label", { class: "check" }, scopeSome, scopeSomeLabel),
        ),
        picker,
      ),
      subtaskOptions,
      h(
        "fieldset",
        {},
        h("legend", {}, "Budget"),
        h(
          "div",
          { class: "field" },
          h("label", { for: "opt-budget" }, "Stop the run at (USD)", h("span", { class: "hint" }, " — optional; items not started when it is reached fail with budget_exceeded")),
          h("div", { class: "money" }, h("span", { "aria-hidden": "true" }, "$"), budget),
        ),
      ),
      h("fieldset", {}, h("legend", {}, "Models"), modelInfo),
      error,
    ),
    h("div", { class: "dialog-foot" }, summary, cancel, submit),
  );
  const dialog = h("dialog", { "aria-labelledby": "run-dialog-title", class: "run-dialog" }, form);
  cancel.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());

  function scopeItems() {
    const kind = SCOPE_OF[stage];
    if (kind === "epics") return epics.map((e) => ({ id: e.epic_id, title: e.title, sub: e.priority }));
    if (kind === "stories") return stories.map((s) => ({ id: s.story_id, title: s.title, sub: s.epicTitle }));
    const pool = stage === "epics" ? analysed : cards;
    return pool.map((c) => ({ id: c.id, title: c.title, sub: c.analysis_status === "analyzed" ? "analysed" : "not analysed" }));
  }

  function renderPicker() {
    const kind = SCOPE_OF[stage];
    const needle = filter.value.trim().toLowerCase();
    const items = scopeItems().filter((i) => !needle || i.title.toLowerCase().includes(needle));
    replace(
      pickList,
      items.length
        ? items.map((item) => {
            const box = h("input", { type: "checkbox", value: item.id, checked: chosen[kind].has(item.id) });
            box.addEventListener("change", () => {
              if (box.checked) chosen[kind].add(item.id);
              else chosen[kind].delete(item.id);
              refreshSummary();
            });
            return h("li", {}, h("label", {}, box, h("span", {}, item.title, h("span", { class: "sub" }, ` · ${item.sub}`))));
          })
        : h("li", { class: "muted small" }, h("label", {}, "Nothing matches.")),
    );
    refreshSummary();
  }

  function refreshSummary() {
    const kind = SCOPE_OF[stage];
    const all = scopeItems();
    const n = scopeSome.checked ? chosen[kind].size : all.length;
    setText(pickCount, `${count(chosen[kind].size)} chosen`);
    const noun = { cards: "card", epics: "epic", stories: "story" }[kind];
    setText(summary, `${STAGE_LABEL[stage]} over ${plural(n, noun, kind)}`);
  }

  function refresh() {
    const kind = SCOPE_OF[stage];
    const all = scopeItems().length;
    setText(scopeAllLabel, `All ${kind}${kind === "cards" && stage === "epics" ? " analysed" : ""} (${count(all)})`);
    setText(scopeSomeLabel, `Chosen ${kind}`);
    picker.hidden = !scopeSome.checked;
    subtaskOptions.hidden = !["pipeline", "subtasks"].includes(stage);
    renderPicker();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    replace(error);
    const kind = SCOPE_OF[stage];
    const body = { stage };
    if (scopeSome.checked) {
      if (!chosen[kind].size) return setText(error, `Choose at least one of the ${kind}, or run over all of them.`);
      body.scope = { [SCOPE_FIELD[kind]]: [...chosen[kind]] };
    }
    const options = {};
    if (!subtaskOptions.hidden) {
      const min = Number(minInput.value);
      const max = Number(maxInput.value);
      if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max > 20 || min > max)
        return setText(error, "Subtasks per story: whole numbers from 1 to 20, and “at least” no more than “at most”.");
      options.subtasks = { min_per_story: min, max_per_story: max, include_tests: tests.checked, include_docs: docs.checked };
    }
    if (budget.value !== "") {
      const usd = Number(budget.value);
      if (!(usd > 0)) return setText(error, "The budget is an amount in US dollars above zero, or empty for no limit.");
      options.budget_usd = usd;
    }
    if (Object.keys(options).length) body.options = options;
    submit.disabled = true;
    setText(submit, "Starting…");
    try {
      const run = await api(`/v1/projects/${encodeURIComponent(data.projectId)}/runs`, {
        method: "POST",
        body,
        headers: { "Idempotency-Key": idempotencyKey },
      });
      dialog.close();
      onStarted(run);
    } catch (problem) {
      setText(error, plainError(problem));
      submit.disabled = false;
      setText(submit, "Start run");
    }
  });

  document.body.append(dialog);
  refresh();
  dialog.showModal();
  return dialog;
}
