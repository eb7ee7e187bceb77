// One DAG: a header (schedule, pause, trigger) and tabs: grid, graph, runs, details, and the trigger form.

import { can, enc, get, qs, session } from "./api.js";
import { ACTIVE_STATES, pauseToggle, tagChips } from "./dags.js";
import { errorBox, fill, fmtDuration, fmtTime, h, kv, link, pre, stateBadge, table } from "./dom.js";
import { drawGraph } from "./graph.js";
import { triggerForm } from "./trigger.js";

const TABS = [
  ["grid", "Grid"],
  ["graph", "Graph"],
  ["runs", "Runs"],
  ["details", "Details"],
];

export const runHref = (dagId, runId) => `#/dags/${enc(dagId)}/runs/${enc(runId)}`;
export const tiHref = (dagId, runId, taskId, mapIndex = -1) =>
  `${runHref(dagId, runId)}/tasks/${enc(taskId)}${mapIndex !== -1 && mapIndex !== null && mapIndex !== undefined ? `?map_index=${mapIndex}` : ""}`;

function header(dag) {
  const base = `#/dags/${enc(dag.dag_id)}`;
  return h(
    "div",
    { class: "page-head dag-head" },
    h(
      "div",
      {},
      h("div", { class: "crumbs" }, link("#/dags", "DAGs"), " / "),
      h("h1", {}, can("operator") ? pauseToggle(dag) : null, " ", dag.display_name || dag.dag_id, dag.paused ? h("span", { class: "badge badge-paused" }, "paused") : null),
      h(
        "div",
        { class: "sub muted" },
        h("span", {}, `Schedule: ${dag.schedule || "none"}`),
        h("span", {}, `Next run: ${fmtTime(dag.next_run)}`),
        dag.owner ? h("span", {}, `Owner: ${dag.owner}`) : null,
        tagChips(dag.tags, (t) => (window.location.hash = `#/dags?tag=${enc(t)}`)),
      ),
    ),
    can("operator") ? h("a", { class: "btn btn-primary", href: `${base}/trigger`, "data-testid": "trigger-button" }, "▶ Trigger") : null,
  );
}

function tabs(dag, current) {
  return h(
    "nav",
    { class: "tabs" },
    TABS.map(([key, label]) => h("a", { href: `#/dags/${enc(dag.dag_id)}/${key}`, class: key === current ? "active" : "" }, label)),
  );
}

export async function dagPage(ctx, dagId, tab = "grid") {
  const dag = await get(`/dags/${enc(dagId)}`);
  if (!ctx.alive()) return;
  const panel = h("div", { class: "tab-panel" });
  fill(ctx.main, header(dag), tabs(dag, tab === "trigger" ? null : tab), panel);
  const render = { grid: gridTab, graph: graphTab, runs: runsTab, details: detailsTab, trigger: triggerTab }[tab || "grid"];
  await render(ctx, dag, panel);
}

// --- grid: runs are columns (oldest left), tasks are rows, each cell a task instance's state ---------------

function gridTable(dag, grid) {
  const runs = grid.runs;
  const headRow = h(
    "tr",
    {},
    h("th", { class: "grid-task" }, "Task"),
    runs.map((r) =>
      h("th", { class: "grid-run" }, h("a", { href: runHref(dag.dag_id, r.run_id), class: `run-bar st-${r.state}`, title: `${r.run_id}\n${r.state} · ${fmtTime(r.logical_date)}`, "data-run-id": r.run_id, "data-state": r.state })),
    ),
  );
  const rows = grid.tasks.map((t) =>
    h(
      "tr",
      {},
      h("th", { class: "grid-task", title: t.task_id }, t.group ? h("span", { class: "muted" }, `${t.group}.`) : null, t.label || t.task_id, t.is_mapped ? h("span", { class: "muted" }, " [ ]") : null),
      runs.map((r) => {
        const cell = (grid.cells[r.run_id] || {})[t.task_id];
        if (!cell) return h("td", { class: "grid-cell" }, h("span", { class: "cell st-none", title: "no instance" }));
        const title = `${t.task_id} in ${r.run_id}\n${cell.state}${cell.try_number ? ` · try ${cell.try_number}` : ""}${cell.map_count ? ` · ${cell.map_count} mapped` : ""}`;
        const href = t.is_mapped ? runHref(dag.dag_id, r.run_id) : tiHref(dag.dag_id, r.run_id, t.task_id);
        return h(
          "td",
          { class: "grid-cell" },
          h("a", { class: `cell st-${cell.state || "none"}`, href, title, "data-task-id": t.task_id, "data-run-id": r.run_id, "data-state": cell.state || "none" }, cell.map_count ? String(cell.map_count) : ""),
        );
      }),
    ),
  );
  return h("div", { class: "grid-wrap" }, h("table", { class: "grid" }, h("thead", {}, headRow), h("tbody", {}, rows)));
}

function legend() {
  const states = ["success", "failed", "running", "queued", "scheduled", "up_for_retry", "upstream_failed", "skipped", "deferred", "none"];
  return h("div", { class: "legend" }, states.map((s) => h("span", { class: "legend-item" }, h("span", { class: `dot st-${s}` }), s.replace(/_/g, " "))));
}

async function gridTab(ctx, dag, panel) {
  let grid = null;
  async function refresh() {
    try {
      grid = await get(`/dags/${enc(dag.dag_id)}/grid?limit=25`);
    } catch (e) {
      fill(panel, errorBox(e.message));
      throw e;
    }
    if (!ctx.alive()) return;
    fill(panel, 
      grid.runs.length ? gridTable(dag, grid) : h("p", { class: "muted empty" }, "No runs yet."),
      legend(),
    );
  }
  await refresh();
  ctx.live(refresh, () => Boolean(grid && grid.runs.some((r) => ACTIVE_STATES.has(r.state))));
}

// --- graph: the selected run's states on the DAG's shape -------------------------------------------------

async function graphTab(ctx, dag, panel) {
  const runs = (await get(`/dags/${enc(dag.dag_id)}/runs?limit=25`)).items;
  let runId = ctx.query.get("run_id") || (runs[0] && runs[0].run_id) || "";
  const picker = h(
    "select",
    { "aria-label": "Run" },
    h("option", { value: "" }, "(no run: the shape only)"),
    runs.map((r) => h("option", { value: r.run_id }, `${fmtTime(r.logical_date)} · ${r.state} · ${r.run_id}`)),
  );
  picker.value = runId;
  const canvas = h("div", { class: "graph-wrap" });
  let graph = null;
  async function refresh() {
    graph = await get(`/dags/${enc(dag.dag_id)}/graph${qs({ run_id: runId })}`);
    if (!ctx.alive()) return;
    fill(canvas, drawGraph(graph, (n) => (runId ? tiHref(dag.dag_id, runId, n.id) : null)));
  }
  picker.addEventListener("change", () => {
    runId = picker.value;
    refresh().catch((e) => fill(canvas, errorBox(e.message)));
  });
  fill(panel, h("div", { class: "toolbar" }, h("label", {}, "Run ", picker), runId ? link(runHref(dag.dag_id, runId), "open run") : null), canvas, legend());
  await refresh();
  ctx.live(refresh, () => Boolean(graph && graph.nodes.some((n) => ACTIVE_STATES.has(n.state))));
}

// --- runs ------------------------------------------------------------------------------------------------

export function runsTable(runs, { showDag = false } = {}) {
  return table(
    [...(showDag ? ["DAG"] : []), "Run", "State", "Type", "Logical date", "Started", "Duration"],
    runs.map((r) =>
      h(
        "tr",
        { "data-run-id": r.run_id },
        showDag ? h("td", {}, link(`#/dags/${enc(r.dag_id)}`, r.dag_id)) : null,
        h("td", { class: "mono" }, link(runHref(r.dag_id, r.run_id), r.run_id), r.needs_attention ? h("span", { class: "badge st-failed", title: r.needs_attention_reason || "" }, "needs attention") : null),
        h("td", {}, stateBadge(r.state)),
        h("td", {}, r.run_type),
        h("td", {}, fmtTime(r.logical_date)),
        h("td", {}, fmtTime(r.start_date)),
        h("td", {}, fmtDuration(r.duration_s)),
      ),
    ),
    { empty: "No runs yet." },
  );
}

async function runsTab(ctx, dag, panel) {
  let runs = [];
  async function refresh() {
    runs = (await get(`/dags/${enc(dag.dag_id)}/runs?limit=100`)).items;
    if (ctx.alive()) fill(panel, runsTable(runs));
  }
  await refresh();
  ctx.live(refresh, () => runs.some((r) => ACTIVE_STATES.has(r.state)));
}

// --- details: description, doc, params, tasks -------------------------------------------------------------

function detailsTab(ctx, dag, panel) {
  const tasks = dag.tasks || [];
  fill(panel, 
    h(
      "div",
      { class: "two-col" },
      h(
        "section",
        { class: "card" },
        h("h2", {}, "About"),
        kv([
          ["DAG id", dag.dag_id],
          ["Description", dag.description],
          ["File", dag.file],
          ["Schedule", dag.schedule],
          ["Next run", fmtTime(dag.next_run)],
          ["Max active runs", dag.max_active_runs],
          ["Active", dag.is_active === false ? "no (file gone)" : "yes"],
        ]),
        dag.doc_md ? [h("h3", {}, "Doc"), pre(dag.doc_md, "doc")] : null,
      ),
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Params"),
        table(
          ["Name", "Default", "Type", "Description"],
          Object.entries(dag.params || {}).map(([name, p]) => [name, h("code", {}, JSON.stringify(p.default)), ((p.schema || {}).type || "any").toString(), p.description || (p.schema || {}).description || ""]),
          { empty: "No params." },
        ),
      ),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, `Tasks (${tasks.length})`),
      table(
        ["Task", "Operator", "Upstream", "Trigger rule", "Pool", "Retries"],
        tasks.map((t) => [h("span", { class: "mono" }, t.task_id, t.is_mapped ? " [mapped]" : ""), t.operator, (t.upstream || []).join(", ") || "—", t.trigger_rule, t.pool, String(t.retries ?? 0)]),
      ),
    ),
  );
}

function triggerTab(ctx, dag, panel) {
  if (!can("operator")) {
    fill(panel, errorBox(`Triggering needs the operator role; you are a ${session.user ? session.user.role : "viewer"}.`));
    return;
  }
  fill(panel, 
    h(
      "section",
      { class: "card narrow" },
      h("h2", {}, `Trigger ${dag.dag_id}`),
      triggerForm(dag, () => (window.location.hash = `#/dags/${enc(dag.dag_id)}/grid`)),
    ),
  );
}
