// Assets: every asset with its producers and consumers; one asset's events, and emitting an event by hand.

import { can, enc, get, post } from "./api.js";
import { actionButton, errorBox, fill, flash, fmtTime, h, json, link, table } from "./dom.js";

const items = (data) => (Array.isArray(data) ? data : data.items);
const dagLinks = (ids) => (ids && ids.length ? ids.map((d, i) => [i ? ", " : "", link(`#/dags/${enc(d)}/grid`, d)]) : "—");

export async function assetsPage(ctx) {
  const list = items(await get("/assets"));
  if (!ctx.alive()) return;
  fill(ctx.main, 
    h("div", { class: "page-head" }, h("h1", {}, "Assets")),
    table(
      ["Asset", "URI", "Producers", "Consumers", "Events", "Last event"],
      list.map((a) => [
        h("span", {}, link(`#/assets/${enc(a.name)}`, a.name), a.kind && a.kind !== "asset" ? h("span", { class: "badge" }, a.kind) : null),
        h("span", { class: "mono small" }, a.uri || ""),
        dagLinks(a.producers),
        dagLinks(a.consumers),
        String(a.events ?? 0),
        fmtTime(a.last_event),
      ]),
      { empty: "No assets: DAGs declare them with outlets and schedule=[Asset(...)]." },
    ),
  );
}

export async function assetPage(ctx, name) {
  const body = h("div");
  const extra = h("textarea", { rows: 3, class: "json", "aria-label": "Extra (JSON)", spellcheck: "false" });
  extra.value = "{}";
  async function refresh() {
    const events = items(await get(`/assets/${enc(name)}/events?limit=100`));
    if (!ctx.alive()) return;
    fill(body, 
      table(
        ["Id", "Time", "Source", "Extra", "Runs triggered"],
        events.map((e) => [String(e.id), fmtTime(e.timestamp), h("code", { class: "small" }, JSON.stringify(e.source || {})), h("code", { class: "small" }, JSON.stringify(e.extra || {})), String(e.triggered_runs ?? 0)]),
        { empty: "No events yet." },
      ),
    );
  }
  const emit = can("operator")
    ? h(
        "section",
        { class: "card narrow" },
        h("h2", {}, "Emit an event"),
        h("p", { class: "muted small" }, "As `dagrunner assets emit`: DAGs scheduled on this asset run."),
        extra,
        actionButton("Emit", async () => {
          let value;
          try {
            value = JSON.parse(extra.value || "{}");
          } catch (e) {
            throw new Error(`extra is not valid JSON: ${e.message}`);
          }
          const result = await post(`/assets/${enc(name)}/events`, { extra: value });
          flash(`Event emitted${result && result.id ? ` (#${result.id})` : ""}`);
          await refresh();
        }, { cls: "btn btn-primary", testid: "emit" }),
      )
    : null;
  fill(ctx.main, 
    h("div", { class: "page-head" }, h("div", {}, h("div", { class: "crumbs" }, link("#/assets", "Assets"), " / "), h("h1", {}, name))),
    emit,
    h("section", { class: "card" }, h("h2", {}, "Events"), body),
  );
  await refresh().catch((e) => fill(body, errorBox(e.message)));
  ctx.live(refresh, () => false);
}

export { json };
