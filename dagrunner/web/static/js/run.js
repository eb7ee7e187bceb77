// A run: its tasks with their states, clear (failed) and mark success/failed; and the list of all runs.

import { can, enc, get, post, qs } from "./api.js";
import { ACTIVE_STATES, FINISHED_STATES } from "./dags.js";
import { runHref, runsTable, tiHref } from "./dag.js";
import { actionButton, errorBox, fill, flash, fmtDuration, fmtTime, h, json, kv, link, pre, stateBadge, table } from "./dom.js";

// The detail's "tasks" is a list of task instance json; an older shape maps labels to states.
export function taskList(run) {
  const tasks = run.tasks || [];
  if (Array.isArray(tasks)) return tasks;
  return Object.entries(tasks).map(([label, state]) => {
    const m = /^(.*)\[(\d+)\]$/.exec(label);
    return { task_id: m ? m[1] : label, map_index: m ? Number(m[2]) : -1, label, state };
  });
}

export function describeChange(result, verb) {
  if (!result) return verb;
  const list = Array.isArray(result) ? result : result.changed || result.cleared || result.task_instances || result.items;
  if (Array.isArray(list)) return `${verb}: ${list.length} task instance${list.length === 1 ? "" : "s"}`;
  if (typeof result.count === "number") return `${verb}: ${result.count} task instance${result.count === 1 ? "" : "s"}`;
  return verb;
}

function runActions(run, refresh) {
  if (!can("operator")) return null;
  const path = `/dags/${enc(run.dag_id)}/runs/${enc(run.run_id)}`;
  return h(
    "div",
    { class: "actions" },
    actionButton("Clear failed", async () => {
      const result = await post(`${path}/clear`, { only_failed: true, dry_run: false });
      flash(describeChange(result, "Cleared failed tasks"));
      await refresh();
    }, { testid: "clear-failed", confirmText: "Clear the failed tasks of this run so they run again?" }),
    actionButton("Clear all", async () => {
      const result = await post(`${path}/clear`, { only_failed: false, dry_run: false });
      flash(describeChange(result, "Cleared"));
      await refresh();
    }, { testid: "clear-run", confirmText: "Clear every task of this run so the whole run runs again?" }),
    actionButton("Mark success", async () => {
      await post(`${path}/state`, { state: "success" });
      flash("Run marked success");
      await refresh();
    }, { cls: "btn btn-success", testid: "mark-success", confirmText: "Mark this run success?" }),
    actionButton("Mark failed", async () => {
      await post(`${path}/state`, { state: "failed" });
      flash("Run marked failed");
      await refresh();
    }, { cls: "btn btn-danger", testid: "mark-failed", confirmText: "Mark this run failed?" }),
  );
}

export async function runPage(ctx, dagId, runId) {
  const head = h("div");
  const body = h("div");
  fill(ctx.main, head, body);
  let run = null;
  async function refresh() {
    try {
      run = await get(`/dags/${enc(dagId)}/runs/${enc(runId)}`);
    } catch (e) {
      fill(body, errorBox(e.message));
      throw e;
    }
    if (!ctx.alive()) return;
    const tasks = taskList(run);
    fill(head, 
      h(
        "div",
        { class: "page-head" },
        h(
          "div",
          {},
          h("div", { class: "crumbs" }, link("#/dags", "DAGs"), " / ", link(`#/dags/${enc(dagId)}/grid`, dagId), " / "),
          h("h1", {}, h("span", { class: "mono" }, runId), " ", stateBadge(run.state)),
        ),
        runActions(run, refresh),
      ),
    );
    fill(body, 
      h(
        "div",
        { class: "two-col" },
        h(
          "section",
          { class: "card" },
          h("h2", {}, "Run"),
          kv([
            ["Type", run.run_type],
            ["Logical date", fmtTime(run.logical_date)],
            ["Data interval", run.data_interval_start ? `${fmtTime(run.data_interval_start)} → ${fmtTime(run.data_interval_end)}` : null],
            ["Started", fmtTime(run.start_date)],
            ["Ended", fmtTime(run.end_date)],
            ["Duration", fmtDuration(run.duration_s)],
            run.needs_attention ? ["Needs attention", run.needs_attention_reason || "yes"] : null,
          ]),
        ),
        h("section", { class: "card" }, h("h2", {}, "Conf"), pre(json(run.conf || {}))),
      ),
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Task instances"),
        table(
          ["Task", "State", "Try", "Started", "Ended", "Duration", "Host"],
          tasks.map((t) =>
            h(
              "tr",
              { "data-task-id": t.task_id, "data-state": t.state },
              h("td", { class: "mono" }, link(tiHref(dagId, runId, t.task_id, t.map_index), t.label || t.task_id)),
              h("td", {}, stateBadge(t.state)),
              h("td", {}, t.try_number !== undefined ? `${t.try_number}${t.max_tries !== undefined ? ` / ${t.max_tries + 1}` : ""}` : "—"),
              h("td", {}, fmtTime(t.start_date)),
              h("td", {}, fmtTime(t.end_date)),
              h("td", {}, fmtDuration(t.duration_s)),
              h("td", {}, t.hostname || "—"),
            ),
          ),
          { empty: "No task instances yet." },
        ),
      ),
    );
  }
  await refresh();
  ctx.live(refresh, () => Boolean(run && (ACTIVE_STATES.has(run.state) || taskList(run).some((t) => !FINISHED_STATES.has(t.state)))));
}

export async function runsPage(ctx) {
  const state = h(
    "select",
    { "aria-label": "State" },
    ["", "queued", "running", "success", "failed"].map((s) => h("option", { value: s }, s || "All states")),
  );
  state.value = ctx.query.get("state") || "";
  const dag = h("input", { type: "search", placeholder: "DAG id", value: ctx.query.get("dag_id") || "", "aria-label": "DAG id" });
  const body = h("div");
  let runs = [];
  async function refresh() {
    try {
      runs = (await get(`/runs${qs({ dag_id: dag.value.trim(), state: state.value, limit: 100 })}`)).items;
    } catch (e) {
      fill(body, errorBox(e.message));
      throw e;
    }
    if (ctx.alive()) fill(body, runsTable(runs, { showDag: true }));
  }
  state.addEventListener("change", () => refresh().catch(() => {}));
  dag.addEventListener("change", () => refresh().catch(() => {}));
  fill(ctx.main, h("div", { class: "page-head" }, h("h1", {}, "Runs"), h("div", { class: "filters" }, dag, state)), body);
  await refresh();
  ctx.live(refresh, () => runs.some((r) => ACTIVE_STATES.has(r.state)));
}

export { runHref };
