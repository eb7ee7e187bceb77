// The DAG list: search, filter by paused and tag, schedule in words, next run, recent runs as dots, pause toggle.

import { can, enc, get, patch, qs } from "./api.js";
import { errorBox, fill, flash, fmtTime, h, link, stateDot } from "./dom.js";

const PAGE = 50;
export const ACTIVE_STATES = new Set(["queued", "running", "scheduled", "up_for_retry", "deferred", "restarting"]);
// A task instance in none of these will still change (a cleared one is "none" until it is scheduled).
export const FINISHED_STATES = new Set(["success", "failed", "skipped", "upstream_failed", "removed"]);

export function pauseToggle(dag, onChange) {
  const input = h("input", { type: "checkbox", checked: !dag.paused, "aria-label": `${dag.dag_id} active` });
  const toggle = h("label", { class: "switch", title: dag.paused ? "Paused: click to unpause" : "Active: click to pause" }, input, h("span", { class: "slider" }));
  toggle.dataset.testid = "pause-toggle";
  input.addEventListener("change", async () => {
    input.disabled = true;
    try {
      const updated = await patch(`/dags/${enc(dag.dag_id)}`, { is_paused: !input.checked });
      flash(`${dag.dag_id} ${updated.paused ? "paused" : "unpaused"}`);
      if (onChange) onChange(updated);
    } catch (e) {
      input.checked = !input.checked;
      flash(e.message, "error");
    } finally {
      input.disabled = false;
    }
  });
  return toggle;
}

export function tagChips(tags, onTag) {
  return h("span", { class: "tags" }, (tags || []).map((t) => h("button", { class: "tag", type: "button", onclick: () => onTag && onTag(t) }, t)));
}

function row(dag, setTag) {
  const base = `#/dags/${enc(dag.dag_id)}`;
  const runs = [...(dag.recent_runs || [])].reverse(); // oldest left, newest right, as the grid
  return h(
    "tr",
    { class: dag.paused ? "paused" : "", "data-dag-id": dag.dag_id },
    h("td", { class: "col-toggle" }, can("operator") ? pauseToggle(dag) : h("span", { class: "muted small" }, dag.paused ? "paused" : "active")),
    h(
      "td",
      { class: "col-dag" },
      link(base, h("strong", {}, dag.display_name || dag.dag_id)),
      dag.display_name && dag.display_name !== dag.dag_id ? h("span", { class: "muted small" }, ` ${dag.dag_id}`) : null,
      dag.import_error ? h("div", { class: "error small" }, dag.import_error) : null,
      h("div", { class: "sub" }, tagChips(dag.tags, setTag), dag.owner ? h("span", { class: "muted small" }, ` owner ${dag.owner}`) : null),
    ),
    h("td", { class: "col-schedule" }, dag.schedule || "—"),
    h("td", { class: "col-next" }, fmtTime(dag.next_run)),
    h(
      "td",
      { class: "col-runs" },
      runs.length
        ? runs.map((r) => stateDot(r.state, `${r.run_id}: ${r.state}`, `${base}/runs/${enc(r.run_id)}`))
        : h("span", { class: "muted small" }, "no runs"),
    ),
    h("td", { class: "col-actions" }, can("operator") ? h("a", { class: "btn btn-small", href: `${base}/trigger`, title: "Trigger a run" }, "▶ Trigger") : null),
  );
}

export async function dagsPage(ctx) {
  const filters = { search: ctx.query.get("search") || "", paused: ctx.query.get("paused") || "", tag: ctx.query.get("tag") || "", offset: 0 };
  const search = h("input", { type: "search", class: "search", placeholder: "Search DAGs…", value: filters.search, "aria-label": "Search DAGs" });
  const paused = h(
    "select",
    { "aria-label": "Paused filter" },
    h("option", { value: "" }, "All"),
    h("option", { value: "false" }, "Active"),
    h("option", { value: "true" }, "Paused"),
  );
  paused.value = filters.paused;
  const tagBox = h("span", { class: "tag-filter" });
  const body = h("div", { class: "dag-list" });
  const pager = h("div", { class: "pager" });
  let last = null;

  const setTag = (tag) => {
    filters.tag = tag;
    filters.offset = 0;
    refresh();
  };

  async function refresh() {
    let data;
    try {
      data = await get(`/dags${qs({ search: filters.search, paused: filters.paused, tag: filters.tag, limit: PAGE, offset: filters.offset })}`);
    } catch (e) {
      fill(body, errorBox(e.message));
      throw e;
    }
    if (!ctx.alive()) return;
    last = data;
    fill(tagBox, filters.tag ? h("button", { class: "tag tag-on", type: "button", onclick: () => setTag("") }, `tag: ${filters.tag} ✕`) : "");
    fill(body, 
      data.items.length
        ? h(
            "table",
            { class: "table dags" },
            h("thead", {}, h("tr", {}, ["", "DAG", "Schedule", "Next run", "Recent runs", ""].map((x) => h("th", {}, x)))),
            h("tbody", {}, data.items.map((d) => row(d, setTag))),
          )
        : h("p", { class: "muted empty" }, filters.search || filters.tag || filters.paused ? "No DAG matches." : "No DAGs yet: put a DAG file in the dags folder and run the scheduler."),
    );
    const from = data.total ? data.offset + 1 : 0;
    fill(pager, 
      h("span", { class: "muted" }, `${from}–${data.offset + data.items.length} of ${data.total}`),
      data.offset > 0 ? h("button", { class: "btn btn-small", type: "button", onclick: () => { filters.offset = Math.max(0, filters.offset - PAGE); refresh(); } }, "← Previous") : null,
      data.offset + data.items.length < data.total ? h("button", { class: "btn btn-small", type: "button", onclick: () => { filters.offset += PAGE; refresh(); } }, "Next →") : null,
    );
  }

  let debounce = null;
  search.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      filters.search = search.value.trim();
      filters.offset = 0;
      refresh().catch(() => {});
    }, 250);
  });
  paused.addEventListener("change", () => {
    filters.paused = paused.value;
    filters.offset = 0;
    refresh().catch(() => {});
  });

  fill(ctx.main, 
    h("div", { class: "page-head" }, h("h1", {}, "DAGs"), h("div", { class: "filters" }, search, paused, tagBox)),
    body,
    pager,
  );
  await refresh();
  ctx.live(refresh, () => Boolean(last && last.items.some((d) => (d.recent_runs || []).some((r) => ACTIVE_STATES.has(r.state)))));
}
