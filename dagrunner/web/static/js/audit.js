// The audit log: who changed what and when, filtered by DAG, event (or prefix ending in ".") and actor.

import { enc, get, qs } from "./api.js";
import { errorBox, fill, fmtTime, h, json, link, table } from "./dom.js";

const PAGE = 100;

export async function auditPage(ctx) {
  const inputs = {};
  for (const [key, placeholder] of [["dag_id", "DAG id"], ["event", "Event, or prefix like task."], ["actor", "Actor"]]) {
    inputs[key] = h("input", { type: "search", placeholder, value: ctx.query.get(key) || "", "aria-label": placeholder, name: key });
  }
  const runId = ctx.query.get("run_id") || "";
  let offset = 0;
  const body = h("div");
  const pager = h("div", { class: "pager" });
  async function refresh() {
    const filters = Object.fromEntries(Object.entries(inputs).map(([k, el]) => [k, el.value.trim()]));
    let data;
    try {
      data = await get(`/audit${qs({ ...filters, run_id: runId, limit: PAGE, offset })}`);
    } catch (e) {
      fill(body, errorBox(e.message));
      return;
    }
    if (!ctx.alive()) return;
    fill(body, 
      table(
        ["Time", "Actor", "Event", "Where", "Change", "Reason", "Detail"],
        data.items.map((r) => [
          fmtTime(r.ts),
          r.actor,
          h("code", {}, r.event),
          h(
            "span",
            { class: "mono small" },
            r.dag_id ? link(`#/dags/${enc(r.dag_id)}/grid`, r.dag_id) : "",
            r.run_id ? [" / ", link(`#/dags/${enc(r.dag_id)}/runs/${enc(r.run_id)}`, r.run_id)] : "",
            r.task_id ? ` / ${r.task_id}${r.map_index !== null && r.map_index >= 0 ? `[${r.map_index}]` : ""}` : "",
          ),
          r.old_state || r.new_state ? `${r.old_state || "—"} → ${r.new_state || "—"}` : "",
          r.reason || "",
          r.detail ? h("details", {}, h("summary", {}, "detail"), h("pre", { class: "code small" }, json(r.detail))) : "",
        ]),
        { empty: "No audit records match.", cls: "audit" },
      ),
    );
    fill(pager, 
      h("span", { class: "muted" }, `${data.total ? data.offset + 1 : 0}–${data.offset + data.items.length} of ${data.total}`),
      offset > 0 ? h("button", { class: "btn btn-small", type: "button", onclick: () => { offset = Math.max(0, offset - PAGE); refresh(); } }, "← Newer") : null,
      offset + data.items.length < data.total ? h("button", { class: "btn btn-small", type: "button", onclick: () => { offset += PAGE; refresh(); } }, "Older →") : null,
    );
  }
  const apply = () => {
    offset = 0;
    refresh();
  };
  for (const el of Object.values(inputs)) el.addEventListener("change", apply);
  fill(ctx.main, 
    h("div", { class: "page-head" }, h("h1", {}, "Audit"), h("div", { class: "filters" }, Object.values(inputs), runId ? h("span", { class: "tag tag-on" }, `run ${runId}`) : null)),
    body,
    pager,
  );
  await refresh();
}
