// The backlog views: epics, stories grouped by epic, subtasks grouped by story within epic
// (a table whose rows expand), and the cards with their analysis. Each item shows the source
// requirements it traces to, resolved to their text and the card they came from.

import { count, h, icon, plural } from "./dom.js";

/** Requirement id -> {id, text, card} from the cards' analyses and the epics' copies. */
export function requirementIndex(cards = [], epics = []) {
  const index = new Map();
  const cardTitle = new Map(cards.map((c) => [c.id, c.title]));
  for (const card of cards) {
    for (const req of card.analysis?.requirements || []) {
      index.set(req.id, { id: req.id, text: req.text, card: card.title });
    }
  }
  for (const epic of epics) {
    for (const req of epic.requirements || []) {
      if (!index.has(req.id)) {
        const cardId = req.id.split(":")[0];
        index.set(req.id, { id: req.id, text: req.text, card: cardTitle.get(cardId) || "" });
      }
    }
  }
  return index;
}

function shortReq(id) {
  const tail = String(id).split(":").pop();
  return tail || id;
}

function requirementItem(id, index) {
  const req = index.get(id);
  return h(
    "li",
    { class: "req" },
    h("span", { class: "req-id" }, shortReq(id)),
    " ",
    req ? req.text : h("span", { class: "muted" }, "(requirement not loaded)"),
    req?.card ? h("div", { class: "req-src" }, `from the card “${req.card}”`) : null,
  );
}

function traceList(ids, index, { open = false, label = "Traces to" } = {}) {
  if (!ids?.length) return h("p", { class: "trace muted" }, "No source requirement recorded.");
  return h(
    "details",
    { class: "trace", open },
    h("summary", {}, `${label} ${plural(ids.length, "source requirement")}`),
    h("ul", {}, ids.map((id) => requirementItem(id, index))),
  );
}

function priority(p) {
  return h("span", { class: `badge ${p}`, title: `Priority ${p}` }, p);
}

function empty(title, text, action = null) {
  return h("div", { class: "empty" }, h("h3", {}, title), h("p", {}, text), action);
}

// ------------------------------------------------------------------------------ epics

export function epicsView(epics, index, runAction) {
  if (!epics.length)
    return empty(
      "No epics yet",
      "Epics appear when analysed cards are grouped. Run the pipeline, or the epics stage once cards are analysed.",
      runAction?.(),
    );
  return h(
    "ol",
    { class: "stack", "aria-label": "Epics", "data-testid": "epics" },
    epics.map((epic) =>
      h(
        "li",
        { class: "card item", "data-epic-id": epic.epic_id },
        h(
          "div",
          { class: "item-head" },
          h("h3", {}, epic.title),
          h(
            "div",
            { class: "tags" },
            priority(epic.priority),
            h("span", { class: "badge", "data-testid": "story-count" }, plural(epic.story_count ?? 0, "story", "stories")),
          ),
        ),
        epic.goal ? h("p", { class: "goal" }, epic.goal) : null,
        h(
          "div",
          { class: "item-foot" },
          h("span", {}, `From ${plural(epic.card_ids?.length || 0, "card")}`),
        ),
        traceList(epic.requirement_ids, index, { label: "Covers" }),
      ),
    ),
  );
}

// ------------------------------------------------------------------------------ stories

function storyLine(story) {
  return h(
    "p",
    { class: "story-line" },
    "As ",
    h("em", {}, withArticle(story.as_a)),
    ", I want ",
    h("em", {}, story.i_want),
    story.so_that ? [", so that ", h("em", {}, story.so_that)] : null,
    ".",
  );
}

/** "user" -> "a user", "admin" -> "an admin"; "the dispatcher", "a user" unchanged. */
function withArticle(role) {
  const text = String(role || "user").trim();
  if (/^(a|an|the|any|every|each|my|our)\s/i.test(text)) return text;
  // "an" before a vowel sound: "an admin", "an operator", but "a user", "a unit manager".
  return `${/^([aeio]|u(?!s|ni|ti|r))/i.test(text) ? "an" : "a"} ${text}`;
}

function criteria(list) {
  if (!list?.length) return null;
  return [
    h("p", { class: "criteria-title" }, "Acceptance criteria"),
    h(
      "ol",
      { class: "criteria", "aria-label": "Acceptance criteria" },
      list.map((ac) =>
        h(
          "li",
          {},
          h("b", {}, "Given"),
          ac.given,
          " ",
          h("b", {}, "when"),
          ac.when,
          " ",
          h("b", {}, "then"),
          ac.then,
        ),
      ),
    ),
  ];
}

export function storiesView(groups, index, runAction) {
  const total = groups.reduce((n, g) => n + g.stories.length, 0);
  if (!total)
    return empty(
      "No stories yet",
      "Stories are written for each epic. Run the pipeline, or the stories stage once there are epics.",
      runAction?.(),
    );
  return h(
    "div",
    { "data-testid": "stories" },
    groups.map(({ epic, stories }) =>
      h(
        "section",
        { class: "group", "aria-label": `Epic: ${epic.title}`, "data-epic-id": epic.epic_id },
        h(
          "div",
          { class: "group-head" },
          h("h3", {}, epic.title),
          priority(epic.priority),
          h(
            "span",
            { class: "muted" },
            `${plural(stories.length, "story", "stories")} · ${count(stories.reduce((n, s) => n + (s.estimate_points || 0), 0))} points`,
          ),
        ),
        stories.length
          ? h(
              "ol",
              { class: "stack" },
              stories.map((story) =>
                h(
                  "li",
                  { class: "card item", "data-story-id": story.story_id },
                  h(
                    "div",
                    { class: "item-head" },
                    h("h4", {}, story.title),
                    h(
                      "div",
                      { class: "tags" },
                      priority(story.priority),
                      h("span", { class: "badge" }, plural(story.estimate_points, "point")),
                    ),
                  ),
                  storyLine(story),
                  criteria(story.acceptance_criteria),
                  traceList(story.requirement_ids, index, { open: true }),
                ),
              ),
            )
          : h("p", { class: "muted" }, "No stories for this epic yet."),
      ),
    ),
  );
}

// ------------------------------------------------------------------------------ subtasks

function hours(value) {
  const n = Number(value || 0);
  return `${Number.isInteger(n) ? n : n.toFixed(1)} h`;
}

function subtaskRows(story, subtasks, index) {
  const titles = new Map(subtasks.map((t) => [t.subtask_id, t.title]));
  const rows = [];
  for (const task of subtasks) {
    const detailId = `st-${task.subtask_id}`.replace(/[^A-Za-z0-9_-]/g, "_");
    const deps = task.depends_on || [];
    const toggle = h(
      "button",
      { class: "row-toggle", type: "button", "aria-expanded": "false", "aria-controls": detailId },
      icon("chevron", "chev"),
      h("span", {}, task.title),
    );
    const row = h(
      "tr",
      { "data-subtask-id": task.subtask_id },
      h("td", {}, toggle),
      h("td", {}, h("span", { class: `badge kind-${task.kind}` }, task.kind)),
      h("td", { class: "num" }, hours(task.estimate_hours)),
      h("td", { class: "num" }, deps.length ? String(deps.length) : "–"),
    );
    // The detail row's content is made on first expand: a big backlog stays a light page.
    const detail = h("tr", { class: "detail", id: detailId, hidden: true });
    const fill = () =>
      h(
        "td",
        { colspan: 4 },
        h(
          "dl",
          {},
          h("dt", {}, "Description"),
          h("dd", {}, task.description || "–"),
          h("dt", {}, "Estimate"),
          h("dd", {}, hours(task.estimate_hours)),
          h("dt", {}, "Depends on"),
          h(
            "dd",
            {},
            deps.length
              ? h("ul", { class: "reqs" }, deps.map((id) => h("li", {}, titles.get(id) || id)))
              : "Nothing: can start at once",
          ),
          h("dt", {}, "Traces to"),
          h(
            "dd",
            {},
            story.requirement_ids?.length
              ? h("ul", { class: "reqs" }, story.requirement_ids.map((id) => requirementItem(id, index)))
              : "No source requirement recorded",
          ),
        ),
      );
    toggle.addEventListener("click", () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      if (open && !detail.firstChild) detail.append(fill());
      toggle.setAttribute("aria-expanded", String(open));
      detail.hidden = !open;
      row.classList.toggle("expanded", open);
    });
    rows.push(row, detail);
  }
  return rows;
}

export function subtasksView(groups, index, runAction) {
  const total = groups.reduce((n, g) => n + g.stories.reduce((m, s) => m + s.subtasks.length, 0), 0);
  if (!total)
    return empty(
      "No subtasks yet",
      "Subtasks break each story into work of hours. Run the pipeline, or the subtasks stage once there are stories.",
      runAction?.(),
    );
  return h(
    "div",
    { "data-testid": "subtasks" },
    groups.map(({ epic, stories }) =>
      h(
        "section",
        { class: "group", "aria-label": `Epic: ${epic.title}`, "data-epic-id": epic.epic_id },
        h("div", { class: "group-head" }, h("h3", {}, epic.title), priority(epic.priority)),
        stories.map(({ story, subtasks }) => {
          const captionId = `cap-${story.story_id}`.replace(/[^A-Za-z0-9_-]/g, "_");
          const sum = subtasks.reduce((n, t) => n + Number(t.estimate_hours || 0), 0);
          return h(
            "div",
            { class: "subgroup", "data-story-id": story.story_id },
            h(
              "div",
              { class: "subgroup-head" },
              h("h4", { id: captionId }, story.title),
              h("span", { class: "muted small" }, `${plural(subtasks.length, "subtask")} · ${hours(sum)}`),
            ),
            subtasks.length
              ? h(
                  "div",
                  { class: "table-wrap" },
                  h(
                    "table",
                    { class: "subtasks", "aria-labelledby": captionId },
                    h(
                      "thead",
                      {},
                      h(
                        "tr",
                        {},
                        h("th", { scope: "col" }, "Subtask"),
                        h("th", { scope: "col", class: "kind" }, "Kind"),
                        h("th", { scope: "col", class: "num" }, "Estimate"),
                        h("th", { scope: "col", class: "num" }, "Depends on"),
                      ),
                    ),
                    h("tbody", {}, subtaskRows(story, subtasks, index)),
                  ),
                )
              : h("p", { class: "muted small" }, "No subtasks for this story yet."),
          );
        }),
      ),
    ),
  );
}

// ------------------------------------------------------------------------------ cards

const CARD_STATUS = { pending: "Not analysed", analyzed: "Analysed", failed: "Failed", running: "Analysing" };
const CARDS_PAGE = 100;

export function cardsView(cards, uploadAction) {
  if (!cards.length)
    return empty(
      "No cards yet",
      "Cards are the requirements cardflow works from. Upload a document above: each section or row becomes a card.",
      uploadAction?.(),
    );
  const list = h("ol", { class: "stack", "aria-label": "Cards", "data-testid": "cards" });
  let shown = 0;
  const more = h("button", { class: "btn", type: "button" });
  const showMore = () => {
    const next = cards.slice(shown, shown + CARDS_PAGE);
    list.append(...next.map(cardItem));
    shown += next.length;
    more.hidden = shown >= cards.length;
    more.textContent = `Show ${Math.min(CARDS_PAGE, cards.length - shown)} more of ${count(cards.length - shown)}`;
  };
  more.addEventListener("click", showMore);
  showMore();
  return h("div", {}, list, h("p", { class: "section" }, more));
}

function cardItem(card) {
  const a = card.analysis;
  const status = card.analysis_status;
  return h(
    "li",
    { class: "card item", "data-card-id": card.id },
    h(
      "div",
      { class: "item-head" },
      h("h3", {}, card.title),
      h(
        "div",
        { class: "tags" },
        a ? priority(a.priority) : null,
        a ? h("span", { class: "badge" }, a.kind) : null,
        h("span", { class: `status ${status === "analyzed" ? "succeeded" : status === "failed" ? "failed" : "queued"}` }, CARD_STATUS[status] || status),
      ),
    ),
    a?.summary ? h("p", { class: "goal" }, a.summary) : h("p", { class: "goal muted" }, (card.body || "").slice(0, 280)),
    a?.requirements?.length
      ? h(
          "details",
          { class: "trace" },
          h("summary", {}, plural(a.requirements.length, "requirement")),
          h(
            "ul",
            {},
            a.requirements.map((r) =>
              h("li", { class: "req" }, h("span", { class: "req-id" }, shortReq(r.id)), " ", r.text),
            ),
          ),
        )
      : null,
    card.error ? h("p", { class: "error-text small" }, card.error) : null,
  );
}
