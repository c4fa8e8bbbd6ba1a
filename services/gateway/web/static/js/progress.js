// Live progress of a run: a watcher that long-polls the run object (ETag + ?wait=) and a
// panel that draws it. The panel never looks frozen: elapsed times count every second on the
// client between polls, in-flight work is striped and moving, and when no new version has
// arrived for a while the footer says since when (and whether the gateway still answers).

import { ApiError, api, plainError, pollRun } from "./api.js";
import {
  ITEM,
  RUN,
  STAGES,
  STAGE_LABEL,
  TERMINAL,
  activity,
  announce,
  clear,
  clock,
  cost,
  count,
  duration,
  h,
  icon,
  plural,
  replace,
  setText,
  shortId,
  statusBadge,
  toast,
} from "./dom.js";

const LONG_POLL_S = 25;
const MAX_LONG_POLLS = 4; // browsers allow ~6 connections per host; keep some for the rest
const QUIET_AFTER_S = 15; // no new version for this long: say since when
const MAX_CHIPS = 8;
const ANNOUNCE_EVERY_MS = 15_000;
let longPolls = 0;

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });

/** Follows one run until it is terminal (and again after resume()). */
export class RunWatcher {
  constructor(run, onUpdate) {
    this.run = run;
    this.etag = `"v${run.version}"`;
    this.onUpdate = onUpdate;
    this.receivedAt = performance.now(); // when this.run arrived (elapsed counts from here)
    this.changedAt = Date.now(); // when the last new version arrived
    this.lostSince = null; // first failed poll of a row of failures
    this.error = null;
    this.controller = null;
  }

  get active() {
    return !TERMINAL.has(this.run.status);
  }

  start() {
    if (this.controller || !this.active) return this;
    this.controller = new AbortController();
    this.loop(this.controller.signal).finally(() => {
      this.controller = null;
    });
    return this;
  }

  stop() {
    this.controller?.abort();
    this.controller = null;
  }

  /** A fresh run object from elsewhere (a cancel or retry answer): show it, follow it. */
  accept(run) {
    if (run.version >= (this.run.version || 0)) this.take(run, `"v${run.version}"`);
    this.start();
  }

  take(run, etag) {
    const changed = run.version !== this.run.version;
    this.run = run;
    this.etag = etag;
    this.receivedAt = performance.now();
    if (changed) this.changedAt = Date.now();
    this.onUpdate(this);
  }

  async loop(signal) {
    let failures = 0;
    while (!signal.aborted && this.active) {
      const long = longPolls < MAX_LONG_POLLS;
      if (long) longPolls += 1;
      const asked = performance.now();
      try {
        const { run, etag } = await pollRun(this.run.id, this.etag, long ? LONG_POLL_S : 0, signal);
        failures = 0;
        this.lostSince = null;
        this.error = null;
        if (run) this.take(run, etag);
        else this.onUpdate(this);
        // A 304 that came back at once (no long poll, or a gateway that does not hold it).
        if (!run && performance.now() - asked < 500) await sleep(long ? 1000 : 3000, signal);
      } catch (error) {
        if (signal.aborted || error.name === "AbortError") break;
        failures += 1;
        this.lostSince ??= Date.now();
        this.error = error;
        this.onUpdate(this);
        if (error instanceof ApiError && [401, 404].includes(error.status)) break;
        await sleep(Math.min(2000 * failures, 10_000), signal);
      } finally {
        if (long) longPolls -= 1;
      }
    }
  }
}

// ------------------------------------------------------------------------------ the panel

function segments(counts) {
  const total = counts.total || 0;
  const pct = (n) => (total ? `${(100 * (n || 0)) / total}%` : "0%");
  return [
    ["done", pct(counts[ITEM.SUCCEEDED])],
    [ITEM.FAILED, pct(counts[ITEM.FAILED])],
    [ITEM.CANCELLED, pct(counts[ITEM.CANCELLED])],
    [ITEM.RUNNING, pct(counts[ITEM.RUNNING])],
  ];
}

/** A progress bar: done, failed, cancelled, then in-flight work as a moving striped segment. */
function progressBar(label, size = "") {
  const parts = Object.fromEntries(
    ["done", ITEM.FAILED, ITEM.CANCELLED, ITEM.RUNNING].map((k) => [k, h("span", { class: k })]),
  );
  const el = h(
    "div",
    { class: `bar ${size}`, role: "progressbar", "aria-label": label, "aria-valuemin": 0 },
    Object.values(parts),
  );
  return {
    el,
    update(counts) {
      for (const [key, width] of segments(counts)) {
        if (parts[key].style.width !== width) parts[key].style.width = width;
      }
      const finished = (counts.succeeded || 0) + (counts.failed || 0) + (counts.cancelled || 0);
      el.setAttribute("aria-valuemax", String(counts.total || 0));
      el.setAttribute("aria-valuenow", String(finished));
      el.setAttribute(
        "aria-valuetext",
        `${counts.succeeded || 0} of ${counts.total || 0} done, ${counts.running || 0} in progress`,
      );
      el.classList.toggle("complete", counts.total > 0 && counts.succeeded === counts.total);
    },
  };
}

/** "(3 analysing)", "(2 analysing, 3 generating)" from a run's items in flight. */
export function inflightText(run, stage = null) {
  const by = {};
  for (const item of run.in_progress || []) {
    if (stage && item.stage !== stage) continue;
    const verb = activity(item.stage || run.stage);
    by[verb] = (by[verb] || 0) + 1;
  }
  if (!stage && !Object.keys(by).length && run.counts?.running) {
    by[activity(run.stage)] = run.counts.running;
  }
  const parts = Object.entries(by).map(([verb, n]) => `${n} ${verb}`);
  return parts.length ? `(${parts.join(", ")})` : "";
}

function runTitle(run) {
  return run.stage === "pipeline" ? "Pipeline run" : `${STAGE_LABEL[run.stage] || run.stage} run`;
}

/**
 * The panel of one run. options: {projectId, dismissible, onDismiss, onChange, detailsLink}
 * The element is `panel.el`; `panel.tick()` is called every second by the page.
 */
export class RunPanel {
  constructor(run, options = {}) {
    this.options = options;
    this.titles = new Map(); // item id -> title, for errors of items never seen in flight
    this.itemsFetched = 0;
    this.lastAnnounce = { at: 0, text: "", status: run.status, stagesDone: new Set(run.stages_done || []) };
    this.shownElapsed = 0;
    this.build(run);
    this.watcher = new RunWatcher(run, () => this.update());
    this.update();
    this.watcher.start();
  }

  get run() {
    return this.watcher.run;
  }

  build(run) {
    const headId = `run-${run.id}-title`;
    this.statusSlot = h("span");
    this.when = h("span", { class: "when" });
    this.cancelBtn = h(
      "button",
      { class: "btn small danger", type: "button", onclick: () => this.cancel() },
      icon("stop"),
      "Cancel run",
    );
    this.retryBtn = h(
      "button",
      { class: "btn small", type: "button", onclick: () => this.retry() },
      icon("retry"),
      "Retry failed items",
    );
    this.dismissBtn = this.options.dismissible
      ? h("button", { class: "btn small ghost", type: "button", onclick: () => this.dismiss() }, "Dismiss")
      : null;
    const details = this.options.detailsLink
      ? h("a", { href: this.options.detailsLink, "data-link": true, class: "small" }, "Log and items")
      : null;

    this.bannerTitle = h("p", { class: "now-title" });
    this.bannerItems = h("ul", { class: "now-items", "aria-label": "Items in progress" });
    this.banner = h(
      "div",
      { class: "now", "data-testid": "now" },
      h("span", { class: "pulse", "aria-hidden": "true" }),
      h("div", { class: "now-text" }, this.bannerTitle, this.bannerItems),
    );

    this.doneValue = h("span", { "data-testid": "done" });
    this.totalValue = h("span");
    this.inflight = h("span", { class: "inflight", "data-testid": "inflight" });
    this.overall = progressBar("Overall progress", "big");
    this.elapsed = h("span", { "data-testid": "elapsed" });
    this.eta = h("span", { "data-testid": "eta" });
    this.tokens = h("span", { "data-testid": "tokens" });

    const stat = (label, value, extra = null) =>
      h("div", { class: "stat" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value), extra);

    this.stagesList = h("ul", { class: "stages", "aria-label": "Stages" });
    this.stageRows = {};
    if (run.stage === "pipeline") {
      for (const stage of STAGES) {
        const bar = progressBar(`${STAGE_LABEL[stage]} progress`);
        const tick = icon("check", "tick");
        const countEl = h("span", { class: "count" });
        const row = h(
          "li",
          { class: "stage-row", "data-stage": stage },
          h("span", { class: "name" }, STAGE_LABEL[stage], tick),
          bar.el,
          countEl,
        );
        this.stageRows[stage] = { row, bar, tick, countEl };
        this.stagesList.append(row);
      }
    }

    this.usage = h("div", { class: "usage", "data-testid": "usage" });
    this.errorsBox = h("div", { class: "errors", hidden: true });
    this.freshDot = h("span", { class: "dot", "aria-hidden": "true" });
    this.freshText = h("span", { "data-testid": "freshness" });
    this.freshness = h("div", { class: "freshness" }, this.freshDot, this.freshText);

    this.el = h(
      "section",
      { class: "card run-panel", "aria-labelledby": headId, "data-run-id": run.id, "data-testid": "run-panel" },
      h(
        "div",
        { class: "run-head" },
        h(this.options.headingLevel || "h3", { id: headId }, runTitle(run)),
        this.statusSlot,
        this.when,
        h("span", { class: "spacer" }),
        details,
        this.cancelBtn,
        this.retryBtn,
        this.dismissBtn,
      ),
      h(
        "div",
        { class: "run-body" },
        this.banner,
        h(
          "div",
          { class: "run-stats" },
          stat(
            "Progress",
            [this.doneValue, h("small", {}, " / ", this.totalValue, " done "), h("small", {}, this.inflight)],
            this.overall.el,
          ),
          stat("Elapsed", this.elapsed),
          stat("Time left", this.eta),
          stat("Tokens", this.tokens),
        ),
        run.stage === "pipeline" ? this.stagesList : null,
        this.usage,
        this.errorsBox,
      ),
      this.freshness,
    );
  }

  /** Redraws from the watcher's latest run object (and connection state). */
  update() {
    const run = this.run;
    const active = !TERMINAL.has(run.status);
    for (const item of run.in_progress || []) this.titles.set(item.item_id, item.title);

    if (this.statusSlot.dataset.status !== run.status) {
      replace(this.statusSlot, statusBadge(run.status));
      this.statusSlot.dataset.status = run.status;
    }
    setText(this.when, `Started ${clock(run.created_at)} · run ${shortId(run.id)}`);
    this.el.classList.toggle("active", active);
    this.cancelBtn.hidden = !active;
    this.cancelBtn.disabled = run.status === RUN.CANCELLING || this.busy === "cancel";
    setText(this.cancelBtn.lastChild, run.status === RUN.CANCELLING ? "Cancelling…" : "Cancel run");
    const failed = run.counts.failed || 0;
    const cancelled = run.counts.cancelled || 0;
    this.retryBtn.hidden = active || failed + cancelled === 0;
    setText(
      this.retryBtn.lastChild,
      failed && cancelled ? "Retry failed and cancelled items" : failed ? "Retry failed items" : "Retry cancelled items",
    );
    this.retryBtn.disabled = this.busy === "retry";
    if (this.dismissBtn) this.dismissBtn.hidden = active;

    const c = run.counts;
    setText(this.doneValue, count(c.succeeded));
    setText(this.totalValue, count(c.total));
    setText(this.inflight, active ? inflightText(run) : "");
    this.overall.update(c);
    if (run.stage === "pipeline") this.updateStages(run, active);
    this.updateUsage(run);
    this.updateErrors(run, active);
    this.updateBanner(run, active);
    this.tick();
    this.announceChanges(run);
    this.options.onChange?.(run, this);
  }

  updateStages(run, active) {
    const done = new Set(run.stages_done || []);
    for (const stage of STAGES) {
      const { row, bar, tick, countEl } = this.stageRows[stage];
      const sc = run.stages?.[stage] || { total: 0 };
      bar.update(sc);
      tick.style.visibility = done.has(stage) ? "visible" : "hidden";
      row.classList.toggle("done", done.has(stage));
      let text;
      if (!sc.total) text = done.has(stage) || !active ? [h("span", {}, "nothing to do")] : [h("span", {}, "waiting")];
      else {
        text = [h("strong", {}, `${count(sc.succeeded)} / ${count(sc.total)}`)];
        const flight = active ? inflightText(run, stage) : "";
        if (flight) text.push(" ", h("span", { class: "inflight" }, flight));
        if (sc.failed) text.push(`, ${sc.failed} failed`);
        if (sc.cancelled) text.push(`, ${sc.cancelled} cancelled`);
      }
      const key = countEl.textContent;
      const probe = h("span", {}, text);
      if (probe.textContent !== key) replace(countEl, text);
    }
  }

  updateUsage(run) {
    const u = run.usage || {};
    const parts = [
      ["Input", `${count(u.input_tokens)} tokens`],
      ["Output", `${count(u.output_tokens)} tokens`],
      ["LLM calls", count(u.llm_calls)],
      ["Cost", cost(u.cost_usd)],
    ];
    if (run.options?.budget_usd) parts.push(["Budget", cost(run.options.budget_usd)]);
    const text = parts.map(([k, v]) => `${k} ${v}`).join(" · ");
    if (this.usage.dataset.text !== text) {
      this.usage.dataset.text = text;
      replace(
        this.usage,
        parts.map(([k, v]) => h("span", {}, `${k} `, h("strong", {}, v))),
      );
    }
    setText(this.tokens, count((u.input_tokens || 0) + (u.output_tokens || 0) + this.tokensInFlight(run)));
  }

  tokensInFlight(run) {
    return (run.in_progress || []).reduce((sum, i) => sum + (i.tokens_so_far || 0), 0);
  }

  updateErrors(run, active) {
    const errors = run.errors || [];
    const key = JSON.stringify([errors.map((e) => [e.item_id, e.code]), this.titles.size, active]);
    if (this.errorsBox.dataset.key === key) return;
    this.errorsBox.dataset.key = key;
    this.errorsBox.hidden = errors.length === 0;
    if (!errors.length) return;
    const unknown = errors.some((e) => !this.titles.has(e.item_id));
    if (unknown && this.itemsFetched < run.version) this.fetchTitles(run.version);
    const onlyCancelled = errors.every((e) => e.code === "cancelled");
    this.errorsBox.classList.toggle("cancel-only", onlyCancelled);
    const failed = errors.filter((e) => e.code !== "cancelled").length;
    const cancelled = errors.length - failed;
    const heading = [failed ? plural(failed, "failed item") : "", cancelled ? plural(cancelled, "cancelled item") : ""]
      .filter(Boolean)
      .join(", ");
    const retry = !active
      ? h("button", { class: "btn small", type: "button", onclick: () => this.retry() }, icon("retry"), "Retry")
      : h("span", { class: "muted small" }, "Retry when the run has finished");
    replace(
      this.errorsBox,
      h("div", { class: "errors-head" }, h("h4", {}, heading), retry),
      h(
        "ul",
        { "aria-label": "Errors" },
        errors.slice(-50).map((e) =>
          h(
            "li",
            {},
            h("span", { class: `badge code ${e.code === "cancelled" ? "cancelled" : ""}` }, e.code || "error"),
            h(
              "span",
              { class: "what" },
              e.stage ? `${STAGE_LABEL[e.stage] || e.stage}: ` : "",
              this.titles.get(e.item_id) || e.item_id,
            ),
            e.message ? h("span", { class: "msg" }, e.message) : null,
          ),
        ),
      ),
    );
  }

  async fetchTitles(version) {
    this.itemsFetched = version;
    try {
      const { items } = await api(`/v1/runs/${encodeURIComponent(this.run.id)}/items`);
      for (const item of items) this.titles.set(item.item_id, item.title);
      this.errorsBox.dataset.key = "";
      this.updateErrors(this.run, !TERMINAL.has(this.run.status));
    } catch {
      /* ids stay shown instead of titles */
    }
  }

  updateBanner(run, active) {
    const items = [...(run.in_progress || [])].sort((a, b) =>
      String(a.started_at || "").localeCompare(String(b.started_at || "")),
    );
    this.banner.className = "now";
    this.chipTimes = [];
    if (active && items.length) {
      setText(this.bannerTitle, `Currently processing ${plural(items.length, "item")}`);
      const key = items.map((i) => i.item_id).join("|");
      if (this.bannerItems.dataset.key !== key) {
        this.bannerItems.dataset.key = key;
        this.chips = items.slice(0, MAX_CHIPS).map((item) => {
          const facts = h("span", { class: "facts" });
          const chip = h(
            "li",
            { class: "now-item" },
            h("span", { class: "stage" }, STAGE_LABEL[item.stage] || ""),
            h("span", { class: "title", title: item.title }, item.title || item.item_id),
            facts,
          );
          return { chip, facts, id: item.item_id };
        });
        replace(
          this.bannerItems,
          this.chips.map((c) => c.chip),
          items.length > MAX_CHIPS ? h("li", { class: "now-more" }, `and ${items.length - MAX_CHIPS} more`) : null,
        );
      }
      const byId = new Map(items.map((i) => [i.item_id, i]));
      this.chipTimes = (this.chips || []).map((c) => ({ ...c, item: byId.get(c.id) }));
      return;
    }
    this.bannerItems.dataset.key = "";
    this.chips = [];
    clear(this.bannerItems);
    const c = run.counts;
    if (active) {
      this.banner.classList.add("idle");
      let text;
      if (run.status === RUN.CANCELLING) text = "Cancelling: items in flight are stopping; finished items stay.";
      else if (run.status === RUN.QUEUED) text = `Queued: waiting for the ${run.stage === "pipeline" ? "analysis" : run.stage} service to start.`;
      else if (c.pending) text = `Waiting for a free worker: ${plural(c.pending, "item")} queued.`;
      else text = "Handing over to the next stage…";
      setText(this.bannerTitle, text);
      return;
    }
    this.banner.classList.add("finished");
    const took = duration(run.elapsed_seconds);
    let text;
    if (run.status === RUN.SUCCEEDED) text = `Finished: ${plural(c.succeeded, "item")} done in ${took}.`;
    else if (run.status === RUN.CANCELLED) {
      this.banner.classList.add("stopped");
      text = `Cancelled after ${took}: ${count(c.succeeded)} done, ${count(c.cancelled)} not done. Retry to finish them.`;
    } else {
      this.banner.classList.add("bad");
      text = `${run.status === RUN.FAILED ? "Failed" : "Partly failed"} after ${took}: ${count(c.succeeded)} done, ${count(c.failed)} failed. See the errors below.`;
    }
    setText(this.bannerTitle, text);
  }

  /** Every second: clocks move between polls, and the freshness line says how fresh. */
  tick() {
    const w = this.watcher;
    const run = w.run;
    const active = !TERMINAL.has(run.status);
    const since = (performance.now() - w.receivedAt) / 1000;
    let elapsed = run.elapsed_seconds || 0;
    if (active) {
      // Never backwards: a new answer may carry a slightly smaller value than we showed.
      elapsed = Math.max(this.shownElapsed, elapsed + since);
      this.shownElapsed = elapsed;
    }
    setText(this.elapsed, duration(elapsed));
    if (!active) setText(this.eta, "–");
    else if (run.eta_seconds === null || run.eta_seconds === undefined) setText(this.eta, "estimating…");
    else {
      const left = run.eta_seconds - since;
      setText(this.eta, left >= 1 ? `~${duration(left)}` : "any moment");
    }
    for (const { facts, item } of this.chipTimes || []) {
      if (!item) continue;
      const secs = (item.elapsed_seconds || 0) + since;
      const tokens = item.tokens_so_far ? ` · ${count(item.tokens_so_far)} tok` : "";
      const attempt = item.attempt > 1 ? ` · attempt ${item.attempt}` : "";
      setText(facts, `${duration(secs)}${tokens}${attempt}`);
    }
    this.updateFreshness(active);
  }

  updateFreshness(active) {
    const w = this.watcher;
    const quietFor = Math.floor((Date.now() - w.changedAt) / 1000);
    let state = "live";
    let text;
    if (!active) {
      state = "done";
      text = `Finished at ${clock(this.run.finished_at || this.run.updated_at)}.`;
    } else if (w.lostSince) {
      state = "lost";
      const why = w.error ? plainError(w.error) : "No answer.";
      text = `Connection lost since ${clock(new Date(w.lostSince))}: ${why} Retrying…`;
    } else if (quietFor >= QUIET_AFTER_S) {
      state = "quiet";
      text = `No new progress since ${clock(new Date(w.changedAt))} (${duration(quietFor)} ago); the gateway answers and the page keeps listening.`;
    } else {
      text = `Live · last change ${quietFor < 2 ? "just now" : `${quietFor}s ago`}`;
    }
    if (this.freshness.dataset.state !== state) {
      this.freshness.className = `freshness ${state}`;
      this.freshness.dataset.state = state;
    }
    setText(this.freshText, text);
  }

  announceChanges(run) {
    const memo = this.lastAnnounce;
    const title = runTitle(run);
    const c = run.counts;
    let text = "";
    let urgent = false;
    if (run.status !== memo.status) {
      urgent = true;
      if (TERMINAL.has(run.status))
        text = `${title} ${(STATUS_LABEL_LOWER[run.status] || run.status)}: ${count(c.succeeded)} of ${count(c.total)} items done.`;
      else text = `${title} ${STATUS_LABEL_LOWER[run.status] || run.status}.`;
      memo.status = run.status;
    } else {
      const done = new Set(run.stages_done || []);
      const newly = [...done].filter((s) => !memo.stagesDone.has(s));
      memo.stagesDone = done;
      if (newly.length && run.stage === "pipeline") {
        urgent = true;
        text = newly.map((s) => `${STAGE_LABEL[s]} finished.`).join(" ");
      } else if (!TERMINAL.has(run.status)) {
        text = `${title}: ${count(c.succeeded)} of ${count(c.total)} items done, ${count(c.running)} in progress.`;
      }
    }
    if (!text || text === memo.text) return;
    const now = Date.now();
    if (!urgent && now - memo.at < ANNOUNCE_EVERY_MS) return;
    memo.at = now;
    memo.text = text;
    announce(text);
  }

  async cancel() {
    this.busy = "cancel";
    this.update();
    try {
      const run = await api(`/v1/runs/${encodeURIComponent(this.run.id)}/cancel`, { method: "POST" });
      this.watcher.accept(run);
      toast("Cancel requested: no new work starts; finished items stay.");
    } catch (error) {
      if (error.code === "run_finished") toast("The run had already finished.");
      else toast(plainError(error), "err");
    } finally {
      this.busy = null;
      this.update();
    }
  }

  async retry() {
    this.busy = "retry";
    this.update();
    try {
      const run = await api(`/v1/runs/${encodeURIComponent(this.run.id)}/retry`, { method: "POST" });
      this.shownElapsed = 0;
      this.watcher.accept(run);
      toast("Retrying the failed and cancelled items.");
      announce(`${runTitle(run)}: retrying.`);
    } catch (error) {
      const words = {
        run_active: "The run is still going; retry when it has finished.",
        nothing_to_retry: "Nothing to retry: no item failed or was cancelled.",
      };
      toast(words[error.code] || plainError(error), "err");
    } finally {
      this.busy = null;
      this.update();
    }
  }

  dismiss() {
    this.destroy();
    this.options.onDismiss?.(this);
  }

  destroy() {
    this.watcher.stop();
    this.el.remove();
  }
}

const STATUS_LABEL_LOWER = {
  [RUN.QUEUED]: "is queued",
  [RUN.RUNNING]: "is running",
  [RUN.CANCELLING]: "is cancelling",
  [RUN.SUCCEEDED]: "succeeded",
  [RUN.PARTIAL]: "partly failed",
  [RUN.FAILED]: "failed",
  [RUN.CANCELLED]: "was cancelled",
};
