// The quality report (GET /v1/projects/{id}/quality) and the open questions
// (GET /v1/projects/{id}/questions) as two tab panels of the project page. Everything shown
// is what the gateway computed; the page only lays it out. Lists come bounded from the API:
// a note says how many more there are.

import { api } from "./api.js";
import { count, h, plural } from "./dom.js";

export const QUESTIONS_PAGE = 200;

function percent(share) {
  return share === null || share === undefined ? "–" : `${Math.round(100 * share)}%`;
}

function span(s) {
  return s ? `characters ${count(s.start)}–${count(s.end)}` : "no position recorded";
}

function mono(text) {
  return h("span", { class: "req-id" }, text);
}

/** A section: heading with its count, the entries (or a plain "none"), a note for the rest. */
function section(id, title, total, entries, render, noneText) {
  const headingId = `quality-${id}-title`;
  const shown = entries.length;
  return h(
    "section",
    { class: "quality-section", "aria-labelledby": headingId, "data-quality": id },
    h("h3", { id: headingId }, title, " ", h("span", { class: "count", "data-testid": "count" }, count(total))),
    shown
      ? h("ul", { class: "quality-list" }, entries.map((entry) => h("li", { class: "req" }, render(entry))))
      : h("p", { class: "muted" }, total ? "Not in this page of the report." : noneText),
    total > shown ? h("p", { class: "muted small" }, `${count(total - shown)} more not shown here; the exports list them all.`) : null,
  );
}

function figure(id, label, value, note) {
  return h(
    "li",
    { class: "kpi", "data-figure": id },
    h("div", { class: "label" }, label),
    h("div", { class: "value" }, value),
    h("div", { class: "note" }, note || "\u00a0"),
  );
}

export function qualityView(report) {
  const c = report.counts;
  const cov = report.coverage;
  const limits = report.thresholds;
  const figures = h(
    "ul",
    { class: "card kpis", "aria-label": "Quality figures", "data-testid": "quality-figures" },
    figure("coverage", "Coverage", percent(cov.share), cov.total ? `${count(cov.covered)} of ${plural(cov.total, "requirement")}` : "no analysed requirement yet"),
    figure("untestable", "Untestable", count(c.stories_untestable), `of ${plural(c.stories, "story", "stories")}`),
    figure("duplicates", "Duplicates", count(c.duplicates), plural(c.duplicate_groups, "group")),
    figure("junk", "Junk", count(c.junk), Object.entries(c.junk_by_category).map(([k, v]) => `${k} ${v}`).join(", ")),
    figure("oversized", "Oversized", count(c.oversized_stories + c.oversized_subtasks), `> ${limits.max_story_points} points or > ${limits.max_subtask_hours} h`),
    figure("questions", "Open questions", count(c.open_questions), ""),
  );
  const storyRef = (s) => [mono(s.story_id), " ", s.title];
  return h(
    "div",
    { "data-testid": "quality" },
    h(
      "p",
      { class: "sub" },
      "Computed by the gateway from the analyses and the backlog: a requirement counts as covered when a story that is not junk cites it.",
    ),
    figures,
    section(
      "uncovered",
      "Requirements no story covers",
      c.requirements_uncovered,
      report.uncovered,
      (r) => [
        mono(r.author_id || r.requirement_id),
        " ",
        r.text,
        h("div", { class: "req-src" }, `from the card “${r.card_title}”`, r.junk_stories.length ? ` · cited only by junk: ${r.junk_stories.map((s) => s.title).join("; ")}` : ""),
      ],
      "Every requirement of the analysed cards is cited by a story.",
    ),
    section("untestable", "Stories without a testable criterion", c.stories_untestable, report.untestable, (u) => [...storyRef(u), h("div", { class: "req-src" }, u.reason)], "Every story has a criterion with a checkable outcome."),
    section(
      "duplicates",
      "Duplicates and near-duplicates",
      c.duplicates,
      report.duplicates,
      (d) => [
        h("span", { class: "badge" }, `${d.kind}s · ${d.reason === "same_title" ? "same title" : `similar (${Math.round(100 * d.similarity)}%)`}`),
        h("ul", {}, d.items.map((i) => h("li", {}, mono(i.id), " ", i.title))),
      ],
      "No two stories, and no two subtasks of a story, say the same.",
    ),
    section("junk", "Junk items", c.junk, report.junk, (j) => [h("span", { class: "badge" }, j.kind), " ", mono(j.id), " ", j.title, h("div", { class: "req-src" }, j.reason)], "No title is markup, metadata, a question or a fragment."),
    section(
      "oversized",
      "Oversized items",
      c.oversized_stories + c.oversized_subtasks,
      report.oversized,
      (o) => [h("span", { class: "badge" }, o.kind), " ", mono(o.id), " ", o.title, h("div", { class: "req-src" }, `${o.size} ${o.unit}, over ${o.limit}`)],
      "No story over the points limit, no subtask over the hours limit.",
    ),
    section("untraced", "Stories citing no requirement", c.stories_without_requirement, report.stories_without_requirement, storyRef, "Every story cites a requirement of the analysed cards."),
  );
}

/** The open questions grouped by card; more pages on request. */
export function questionsView(first, base) {
  const list = h("div", { "data-testid": "questions" });
  const status = h("p", { class: "muted", "data-testid": "questions-total" });
  const more = h("button", { class: "btn", type: "button" });
  let shown = 0;
  const groups = new Map(); // card id -> its <ol>
  const add = (page) => {
    for (const q of page.questions) {
      let ol = groups.get(q.card_id);
      if (!ol) {
        const headingId = `questions-${q.card_id}`.replace(/[^A-Za-z0-9_-]/g, "_");
        ol = h("ol", { class: "quality-list", "aria-labelledby": headingId });
        groups.set(q.card_id, ol);
        list.append(h("section", { class: "group", "data-card-id": q.card_id }, h("h3", { id: headingId }, q.card_title), ol));
      }
      ol.append(h("li", { class: "req", "data-testid": "question" }, q.text, h("div", { class: "req-src" }, span(q.source_span))));
    }
    shown += page.questions.length;
    status.textContent = page.total ? `${plural(page.total, "open question")} in the analysed cards${shown < page.total ? `, ${count(shown)} shown` : ""}.` : "";
    more.hidden = page.next_offset === null || page.next_offset === undefined;
    more.textContent = `Show more questions (${count(page.total - shown)} left)`;
    more.onclick = async () => {
      more.disabled = true;
      try {
        add(await api(`${base}/questions?offset=${page.next_offset}&limit=${QUESTIONS_PAGE}`));
      } finally {
        more.disabled = false;
      }
    };
  };
  if (!first.total)
    return h(
      "div",
      { class: "empty", "data-testid": "questions" },
      h("h3", {}, "No open questions"),
      h("p", {}, "Questions, TBDs and [NEEDS CLARIFICATION] notes the analysis finds in the cards appear here."),
    );
  add(first);
  return h("div", {}, status, list, h("p", { class: "section" }, more));
}
