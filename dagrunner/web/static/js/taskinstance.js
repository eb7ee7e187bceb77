// A task instance: its state, tries, why it is (not) running, clear and mark, and its log tailing live.

import { can, enc, get, post, qs } from "./api.js";
import { FINISHED_STATES } from "./dags.js";
import { runHref } from "./dag.js";
import { describeChange } from "./run.js";
import { actionButton, errorBox, fill, flash, fmtDuration, fmtTime, h, kv, link, stateBadge, table } from "./dom.js";

// Tails one try's log: GET .../logs with the offset it returned, every second until the try is finished.
function logTail(ctx, path, mapIndex, tryNumber) {
  const box = h("pre", { class: "log", "data-testid": "log", "data-try": tryNumber });
  const status = h("span", { class: "muted small log-status" }, "loading…");
  let offset = 0;
  let stopped = false;
  async function step() {
    if (stopped || !ctx.alive()) return false;
    let chunk;
    try {
      chunk = await get(`${path}/logs${qs({ try_number: tryNumber, map_index: mapIndex, offset })}`);
    } catch (e) {
      status.textContent = e.status === 404 ? "no log yet" : e.message;
      return !stopped;
    }
    if (stopped || !ctx.alive()) return false;
    if (chunk.content) {
      const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 24;
      box.append(document.createTextNode(chunk.content));
      if (atBottom) box.scrollTop = box.scrollHeight;
    }
    offset = chunk.offset;
    status.textContent = chunk.finished ? "complete" : "live: following the log…";
    status.classList.toggle("live", !chunk.finished);
    return !chunk.finished;
  }
  step().then((again) => {
    if (again) ctx.every(1000, step);
  });
  return { element: h("div", { class: "log-wrap" }, h("div", { class: "log-head" }, h("strong", {}, `Log of try ${tryNumber}`), " ", status), box), stop: () => (stopped = true) };
}

function tiActions(ti, path, mapIndex, refresh) {
  if (!can("operator")) return null;
  const mi = mapIndex === -1 ? null : mapIndex;
  const downstream = h("input", { type: "checkbox", id: "ti-downstream" });
  const mark = (state, cls) =>
    actionButton(`Mark ${state}`, async () => {
      await post(`${path}/state`, { state, downstream: downstream.checked, upstream: false, map_index: mi });
      flash(`${ti.task_id} marked ${state}`);
      await refresh();
    }, { cls, testid: `mark-${state}`, confirmText: `Mark ${ti.task_id} ${state}?` });
  return h(
    "div",
    { class: "actions" },
    h("label", { class: "check", for: "ti-downstream" }, downstream, " with downstream"),
    actionButton("Clear", async () => {
      const result = await post(`${path}/clear`, { downstream: downstream.checked, upstream: false, dry_run: false, map_index: mi });
      flash(describeChange(result, `Cleared ${ti.task_id}`));
      await refresh();
    }, { testid: "clear-task", confirmText: `Clear ${ti.task_id} so it runs again?` }),
    mark("success", "btn btn-success"),
    mark("failed", "btn btn-danger"),
    mark("skipped", "btn"),
  );
}

export async function taskInstancePage(ctx, dagId, runId, taskId) {
  const mapIndex = Number(ctx.query.get("map_index") ?? -1);
  let pinnedTry = ctx.query.get("try") ? Number(ctx.query.get("try")) : null;
  const path = `/dags/${enc(dagId)}/runs/${enc(runId)}/tasks/${enc(taskId)}`;
  const head = h("div");
  const info = h("div");
  const logSlot = h("div");
  fill(ctx.main, head, info, logSlot);
  let ti = null;
  let tail = null;
  let tailTry = null;

  function showLog(tryNumber) {
    if (tail) tail.stop();
    tailTry = tryNumber;
    if (!tryNumber) {
      tail = null;
      fill(logSlot, h("section", { class: "card" }, h("h2", {}, "Log"), h("p", { class: "muted" }, "No try yet: the log appears when the task starts.")));
      return;
    }
    tail = logTail(ctx, path, mapIndex, tryNumber);
    fill(logSlot, h("section", { class: "card" }, tail.element));
  }

  async function refresh() {
    let why = null;
    try {
      [ti, why] = await Promise.all([get(`${path}${qs({ map_index: mapIndex })}`), get(`${path}/why${qs({ map_index: mapIndex })}`).catch(() => null)]);
    } catch (e) {
      fill(info, errorBox(e.message));
      throw e;
    }
    if (!ctx.alive()) return;
    const tries = ti.tries || [];
    const label = ti.label || (mapIndex >= 0 ? `${taskId}[${mapIndex}]` : taskId);
    fill(head, 
      h(
        "div",
        { class: "page-head" },
        h(
          "div",
          {},
          h("div", { class: "crumbs" }, link("#/dags", "DAGs"), " / ", link(`#/dags/${enc(dagId)}/grid`, dagId), " / ", link(runHref(dagId, runId), runId), " / "),
          h("h1", {}, h("span", { class: "mono" }, label), " ", stateBadge(ti.state)),
        ),
        tiActions(ti, path, mapIndex, refresh),
      ),
    );
    fill(info, 
      h(
        "div",
        { class: "two-col" },
        h(
          "section",
          { class: "card" },
          h("h2", {}, "Instance"),
          kv([
            ["Operator", ti.operator],
            ["Try", ti.try_number !== undefined ? `${ti.try_number}${ti.max_tries !== undefined ? ` of ${ti.max_tries + 1}` : ""}` : null],
            ["Started", fmtTime(ti.start_date)],
            ["Ended", fmtTime(ti.end_date)],
            ["Duration", fmtDuration(ti.duration_s)],
            ["Pool", ti.pool],
            ["Queue", ti.queue],
            ["Host", ti.hostname],
          ]),
        ),
        h(
          "section",
          { class: "card" },
          h("h2", {}, "Why"),
          why && why.checks && why.checks.length
            ? table(["Rule", "", "Reason"], why.checks.map((c) => [c.rule, c.passed ? h("span", { class: "ok" }, "passed") : h("span", { class: "blocked" }, "blocked"), c.reason]))
            : h("p", { class: "muted" }, "Nothing to check: the instance is not waiting."),
        ),
      ),
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Tries"),
        table(
          ["Try", "State", "Started", "Ended", "Host", "Exit", ""],
          tries.map((t) => [
            String(t.try_number),
            stateBadge(t.state),
            fmtTime(t.start_date),
            fmtTime(t.end_date),
            t.hostname || "—",
            t.exit_reason || "—",
            h("button", { class: "btn btn-small", type: "button", onclick: () => { pinnedTry = t.try_number; showLog(t.try_number); } }, "log"),
          ]),
          { empty: "No tries yet." },
        ),
      ),
    );
    // Follow the newest try unless the URL pins one: after a clear the new try's log replaces the old.
    const latest = pinnedTry || (tries.length ? Math.max(...tries.map((t) => t.try_number)) : ti.try_number || null);
    if (latest !== tailTry) showLog(latest);
  }
  await refresh();
  ctx.live(refresh, () => Boolean(ti && !FINISHED_STATES.has(ti.state)));
}
