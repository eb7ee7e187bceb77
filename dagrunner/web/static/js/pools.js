// Pools: slots, what holds them, the circuit breaker; operators create, resize and delete pools.

import { can, enc, del, get, put } from "./api.js";
import { actionButton, errorBox, fill, flash, h, stateBadge, table } from "./dom.js";

const items = (data) => (Array.isArray(data) ? data : data.items);

function editForm(refresh) {
  const name = h("input", { placeholder: "name", "aria-label": "Pool name", maxlength: 250, required: true });
  const slots = h("input", { type: "number", min: 0, step: 1, placeholder: "slots", "aria-label": "Slots", value: "4" });
  const description = h("input", { placeholder: "description", "aria-label": "Description", maxlength: 1000 });
  return h(
    "section",
    { class: "card" },
    h("h2", {}, "Create or resize a pool"),
    h(
      "div",
      { class: "inline-form" },
      name,
      slots,
      description,
      actionButton("Save", async () => {
        if (!name.value.trim()) throw new Error("Enter the pool's name.");
        await put(`/pools/${enc(name.value.trim())}`, { slots: Number(slots.value), description: description.value || null });
        flash(`Pool ${name.value.trim()} saved`);
        await refresh();
      }, { cls: "btn btn-primary" }),
    ),
  );
}

export async function poolsPage(ctx) {
  const body = h("div");
  async function refresh() {
    let pools;
    try {
      pools = items(await get("/pools"));
    } catch (e) {
      fill(body, errorBox(e.message));
      return;
    }
    if (!ctx.alive()) return;
    fill(body, 
      table(
        ["Pool", "Slots", "Used", "Queued", "Waiting", "Open", "Breaker", "Description", ""],
        pools.map((p) => [
          h("strong", {}, p.name),
          String(p.slots),
          String(p.used ?? "—"),
          String(p.queued ?? "—"),
          String(p.scheduled ?? "—"),
          String(p.open_slots ?? "—"),
          p.breaker ? h("span", {}, stateBadge(p.breaker.state), ` ${p.breaker.consecutive_failures}/${p.breaker.threshold}`) : "—",
          p.description || "",
          can("operator") && p.name !== "default_pool"
            ? actionButton("Delete", async () => {
                await del(`/pools/${enc(p.name)}`);
                flash(`Pool ${p.name} deleted`);
                await refresh();
              }, { cls: "btn btn-small btn-danger", confirmText: `Delete pool ${p.name}?` })
            : "",
        ]),
        { empty: "No pools." },
      ),
    );
  }
  fill(ctx.main, h("div", { class: "page-head" }, h("h1", {}, "Pools")), body, can("operator") ? editForm(refresh) : null);
  await refresh();
  ctx.live(refresh, () => false);
}
