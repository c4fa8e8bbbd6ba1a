// The page's entry: routing (History API; the gateway serves the same shell at every page
// path), the API key prompt, and the projects list. The project and run pages are in their
// own modules.

import { ApiError, adoptKeyFromFragment, api, onUnauthorized, plainError, session } from "./api.js";
import { RUN, announce, count, dateTime, h, plural, replace, statusBadge } from "./dom.js";
import { focusHeading, navigate, setCrumbs } from "./shell.js";
import { ProjectPage } from "./project.js";
import { RunPage } from "./runpage.js";

const config = JSON.parse(document.getElementById("cardflow-config")?.textContent || "{}");
const main = document.getElementById("main");
const sessionBox = document.getElementById("session");
let current = null; // the view on screen: {destroy(), tick()?}

// ------------------------------------------------------------------------------ shell

function renderSession() {
  if (!session.key) return replace(sessionBox);
  replace(
    sessionBox,
    h("span", { class: "who", title: "The API key this tab uses (kept in this tab only)" }, `Key …${session.key.slice(-4)}`),
    h(
      "button",
      {
        class: "btn small ghost",
        type: "button",
        onclick: () => {
          session.clear();
          route();
        },
      },
      "Change key",
    ),
  );
}

/** Same-origin links marked data-link move within the page, without a reload. */
document.addEventListener("click", (event) => {
  const link = event.target.closest?.("a[data-link]");
  if (!link || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(link.getAttribute("href"));
});
window.addEventListener("popstate", () => route());
window.addEventListener("cardflow:navigate", () => route());
// A #key=... link opened in a tab that shows the page already.
window.addEventListener("hashchange", () => {
  if (adoptKeyFromFragment()) route();
});
document.getElementById("skip-link")?.addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
// A file dropped outside the drop zone must not make the browser leave the page.
for (const type of ["dragover", "drop"]) window.addEventListener(type, (e) => e.preventDefault());

function mount(view, title) {
  current?.destroy?.();
  current = view;
  document.title = title ? `${title} · cardflow` : "cardflow";
}

function route() {
  renderSession();
  const path = location.pathname;
  if (!session.key) return showKeyPrompt();
  let match;
  if ((match = /^\/projects\/([^/]+)\/runs\/([^/]+)\/?$/.exec(path))) {
    const view = new RunPage(main, { projectId: decodeURIComponent(match[1]), runId: decodeURIComponent(match[2]), config });
    mount(view, "Run");
    return view.start();
  }
  if ((match = /^\/projects\/([^/]+)\/?$/.exec(path))) {
    const tab = new URLSearchParams(location.search).get("tab");
    const view = new ProjectPage(main, { projectId: decodeURIComponent(match[1]), tab, config });
    mount(view, "Project");
    return view.start();
  }
  const view = new ProjectsPage(main);
  mount(view, "Projects");
  return view.start();
}

// ------------------------------------------------------------------------------ key prompt

function showKeyPrompt(message = "") {
  mount(null, "API key");
  setCrumbs([]);
  const input = h("input", {
    type: "password",
    id: "api-key",
    autocomplete: "off",
    required: true,
    spellcheck: false,
    "aria-describedby": "api-key-hint",
  });
  const error = h("div", { class: "form-error", role: "alert" }, message);
  const submit = h("button", { class: "btn primary", type: "submit" }, "Continue");
  const form = h(
    "form",
    {},
    h(
      "div",
      { class: "field" },
      h("label", { for: "api-key" }, "API key"),
      input,
      h(
        "span",
        { class: "hint", id: "api-key-hint" },
        "Kept in this browser tab only (sessionStorage) and sent to this gateway with each request.",
      ),
    ),
    error,
    h("div", {}, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      error.textContent = "Enter an API key.";
      return input.focus();
    }
    submit.disabled = true;
    session.set(key);
    try {
      await api("/v1/projects");
      announce("Key accepted.");
      route();
    } catch (problem) {
      session.clear();
      error.textContent = problem instanceof ApiError && problem.status === 401 ? "This key was refused. Check it and try again." : plainError(problem);
      submit.disabled = false;
      input.focus();
    }
  });
  replace(
    main,
    h(
      "div",
      { class: "signin card card-body" },
      h("h1", {}, "Open cardflow"),
      h("p", { class: "lead" }, "Enter an API key of this gateway to see your projects and runs."),
      form,
      h(
        "details",
        {},
        h("summary", {}, "Where do I find a key?"),
        h(
          "p",
          {},
          "On a local stack, `make up` prints the key and keeps it in .cardflow/api-key; opening this page as /#key=<the key> fills it in. Elsewhere, ask whoever runs cardflow for a key (minted with python -m services.gateway.keys create --tenant NAME).",
        ),
      ),
    ),
  );
  renderSession();
  input.focus();
}

onUnauthorized(() => {
  session.clear();
  showKeyPrompt("The API key was refused (it may have been revoked). Enter a valid key.");
});

// ------------------------------------------------------------------------------ projects list

class ProjectsPage {
  constructor(root) {
    this.root = root;
    this.timer = null;
    this.list = h("div", { "aria-busy": "true" }, h("p", { class: "loading" }, "Loading projects…"));
  }

  start() {
    setCrumbs([["Projects", "/"]]);
    const name = h("input", { type: "text", id: "new-name", required: true, maxLength: 200, autocomplete: "off" });
    const description = h("input", { type: "text", id: "new-desc", maxLength: 5000, autocomplete: "off" });
    const error = h("div", { class: "form-error", role: "alert" });
    const form = h(
      "form",
      { class: "card new-project", "aria-labelledby": "new-project-title" },
      h("h2", { id: "new-project-title" }, "New project"),
      h(
        "div",
        { class: "row" },
        h("div", { class: "field" }, h("label", { for: "new-name" }, "Name"), name),
        h("div", { class: "field" }, h("label", { for: "new-desc" }, "Description ", h("span", { class: "hint" }, "(optional)")), description),
        h("button", { class: "btn primary", type: "submit" }, "Create project"),
      ),
      error,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      if (!name.value.trim()) {
        error.textContent = "Give the project a name.";
        return name.focus();
      }
      try {
        const project = await api("/v1/projects", { method: "POST", body: { name: name.value.trim(), description: description.value.trim() } });
        announce(`Project ${project.name} created.`);
        navigate(`/projects/${encodeURIComponent(project.id)}`);
      } catch (problem) {
        error.textContent = plainError(problem);
      }
    });
    replace(
      this.root,
      h(
        "div",
        { class: "page-head" },
        h(
          "div",
          {},
          h("h1", {}, "Projects"),
          h("p", { class: "sub" }, "Each project turns requirement documents into a backlog: cards are analysed, then grouped into epics, written up as stories and broken into subtasks."),
        ),
      ),
      form,
      h("section", { class: "section", "aria-labelledby": "projects-title" }, h("h2", { id: "projects-title", class: "sr-only" }, "Your projects"), this.list),
    );
    focusHeading();
    this.load();
    this.timer = setInterval(() => this.load(), 10_000);
  }

  async load() {
    try {
      const { projects } = await api("/v1/projects");
      this.render(projects);
    } catch (problem) {
      replace(this.list, h("p", { class: "notice", role: "alert" }, plainError(problem)));
    }
  }

  render(projects) {
    this.list.removeAttribute("aria-busy");
    if (!projects.length) {
      return replace(
        this.list,
        h(
          "div",
          { class: "empty" },
          h("h3", {}, "No projects yet"),
          h("p", {}, "Create a project above, then drop a requirements document into it: cardflow splits it into cards and can turn them into a backlog in one run."),
        ),
      );
    }
    replace(
      this.list,
      h(
        "ul",
        { class: "project-grid", "data-testid": "projects" },
        projects.map((p) => {
          const k = p.kpis;
          const active = p.active_runs?.length || 0;
          return h(
            "li",
            {},
            h(
              "article",
              { class: "card project-card" },
              h("h2", {}, h("a", { href: `/projects/${encodeURIComponent(p.id)}`, "data-link": true }, p.name)),
              p.description ? h("p", { class: "desc" }, p.description) : h("p", { class: "desc" }, `Created ${dateTime(p.created_at)}`),
              active ? h("div", {}, statusBadge(RUN.RUNNING), " ", h("span", { class: "small muted" }, plural(active, "run") + " in progress")) : null,
              h(
                "div",
                { class: "meta" },
                h("span", {}, h("strong", {}, count(k.cards)), " cards"),
                h("span", {}, h("strong", {}, count(k.epics)), " epics"),
                h("span", {}, h("strong", {}, count(k.stories)), " stories"),
                h("span", {}, h("strong", {}, count(k.subtasks)), " subtasks"),
              ),
            ),
          );
        }),
      ),
    );
  }

  destroy() {
    clearInterval(this.timer);
  }
}

// ------------------------------------------------------------------------------ boot

// Client-side clocks: every view's elapsed times and freshness lines move each second.
setInterval(() => current?.tick?.(), 1000);
adoptKeyFromFragment();
route();
