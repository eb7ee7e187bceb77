// Dead letters: broker messages a watcher could not use; look at one, replay it, or discard it.

import { can, enc, get, post, qs } from "./api.js";
import { actionButton, errorBox, fill, flash, fmtTime, h, json, kv, link, pre, stateBadge, table } from "./dom.js";

const items = (data) => (Array.isArray(data) ? data : data.items);

function actions(row, after) {
  if (!can("operator") || row.status !== "dead") return null;
  return h(
    "span",
    { class: "actions" },
    actionButton("Replay", async () => {
      const result = await post(`/dead-letters/${row.id}/replay`, {});
      if (result && result.replayed === false) flash(`Dead letter ${row.id} failed again: ${result.detail}`, "error");
      else flash(`Dead letter ${row.id} replayed`);
      await after();
    }, { cls: "btn btn-small", testid: "replay" }),
    actionButton("Discard", async () => {
      const reason = window.prompt("Why discard it? (kept in the audit log)", "");
      if (reason === null) return;
      await post(`/dead-letters/${row.id}/discard`, { reason: reason || null });
      flash(`Dead letter ${row.id} discarded`);
      await after();
    }, { cls: "btn btn-small btn-danger", testid: "discard" }),
  );
}

export async function deadLettersPage(ctx) {
  const status = h("select", { "aria-label": "Status" }, [["dead", "waiting"], ["replayed", "replayed"], ["discarded", "discarded"], ["all", "all"]].map(([v, label]) => h("option", { value: v }, label)));
  status.value = ctx.query.get("status") || "dead";
  const body = h("div");
  async function refresh() {
    let rows;
    try {
      rows = items(await get(`/dead-letters${qs({ status: status.value })}`));
    } catch (e) {
      fill(body, errorBox(e.message));
      return;
    }
    if (!ctx.alive()) return;
    fill(body, 
      table(
        ["Id", "Created", "Status", "Watcher", "Asset", "Attempts", "Reason", ""],
        rows.map((r) => [link(`#/dead-letters/${r.id}`, String(r.id)), fmtTime(r.created_at), stateBadge(r.status), r.watcher, r.asset, String(r.attempts), r.reason, actions(r, refresh)]),
        { empty: "No dead letters." },
      ),
    );
  }
  status.addEventListener("change", refresh);
  fill(ctx.main, h("div", { class: "page-head" }, h("h1", {}, "Dead letters"), h("div", { class: "filters" }, status)), body);
  await refresh();
}

export async function deadLetterPage(ctx, id) {
  async function refresh() {
    const row = await get(`/dead-letters/${enc(id)}`);
    if (!ctx.alive()) return;
    fill(ctx.main, 
      h("div", { class: "page-head" }, h("div", {}, h("div", { class: "crumbs" }, link("#/dead-letters", "Dead letters"), " / "), h("h1", {}, `Dead letter ${row.id} `, stateBadge(row.status))), actions(row, refresh)),
      h(
        "section",
        { class: "card" },
        kv([
          ["Watcher", row.watcher],
          ["Asset", row.asset],
          ["Broker", row.broker],
          ["Source", row.source],
          ["Message id", row.message_id],
          ["Attempts", String(row.attempts)],
          ["Reason", row.reason],
          ["Created", fmtTime(row.created_at)],
          ["Updated", fmtTime(row.updated_at)],
          ["Resolved by", row.resolved_by],
          ["Asset event", row.asset_event_id],
        ]),
      ),
      h("section", { class: "card" }, h("h2", {}, "Headers"), pre(json(row.headers || {}))),
      h("section", { class: "card" }, h("h2", {}, `Payload (${row.encoding || "utf-8"}, ${row.bytes ?? "?"} bytes)`), pre(typeof row.payload === "string" ? row.payload : json(row.payload))),
    );
  }
  await refresh();
}
