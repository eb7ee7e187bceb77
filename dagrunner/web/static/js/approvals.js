// The approvals inbox: what waits for a person; approve, reject, or respond with options, a form and a comment.

import { can, enc, get, post, qs } from "./api.js";
import { tiHref } from "./dag.js";
import { actionButton, errorBox, fill, flash, fmtTime, h, link } from "./dom.js";
import { field } from "./trigger.js";

const APPROVAL = ["Approve", "Reject"];
const isApproval = (options) => options.length === 2 && options[0] === APPROVAL[0] && options[1] === APPROVAL[1];

function answerForm(item, refresh) {
  const key = `${item.dag_id}-${item.run_id}-${item.task_id}-${item.map_index}`.replace(/[^A-Za-z0-9_-]/g, "_");
  const comment = h("textarea", { rows: 2, placeholder: "Comment (kept in the audit log)", "aria-label": "Comment", maxlength: 2000 });
  const fields = Object.entries(item.params || {}).map(([name, schema]) => [name, field(`${key}-${name}`, { default: (schema || {}).default, schema: schema || {}, title: name })]);
  const choices = isApproval(item.options)
    ? []
    : item.options.map((option, i) => {
        const input = h("input", { type: item.multiple ? "checkbox" : "radio", name: `choice-${key}`, value: option, id: `choice-${key}-${i}` });
        return [option, input, h("label", { class: "check", for: `choice-${key}-${i}` }, input, ` ${option}`)];
      });
  const error = h("div", { class: "form-error" });

  async function send(action, chosen) {
    error.replaceChildren();
    const params = {};
    try {
      for (const [name, f] of fields) params[name] = f.read();
    } catch (e) {
      fill(error, errorBox(e.message));
      return;
    }
    try {
      await post("/approvals/respond", {
        id: item.id ?? null,
        dag_id: item.dag_id,
        run_id: item.run_id,
        task_id: item.task_id,
        map_index: item.map_index,
        action,
        chosen_options: chosen,
        params_input: params,
        comment: comment.value.trim() || null,
      });
    } catch (e) {
      fill(error, errorBox(e.message));
      return;
    }
    flash(`${item.task_id}: ${action === "respond" ? `answered ${chosen.join(", ")}` : `${action}d`}`);
    await refresh();
  }

  const buttons = isApproval(item.options)
    ? [
        actionButton("Approve", () => send("approve", ["Approve"]), { cls: "btn btn-success", testid: "approve" }),
        actionButton("Reject", () => send("reject", ["Reject"]), { cls: "btn btn-danger", testid: "reject" }),
      ]
    : [
        actionButton("Respond", () => {
          const chosen = choices.filter(([, input]) => input.checked).map(([option]) => option);
          if (!chosen.length) {
            fill(error, errorBox("Choose an option first."));
            return Promise.resolve();
          }
          return send("respond", chosen);
        }, { cls: "btn btn-primary", testid: "respond" }),
      ];
  return h(
    "div",
    { class: "answer" },
    choices.length ? h("div", { class: "choices" }, choices.map(([, , label]) => label)) : null,
    fields.length ? h("fieldset", {}, h("legend", {}, "Form"), fields.map(([, f]) => f.row)) : null,
    comment,
    error,
    h("div", { class: "form-actions" }, buttons),
  );
}

function card(item, refresh) {
  return h(
    "article",
    { class: "card approval", "data-task-id": item.task_id, "data-run-id": item.run_id },
    h("h2", {}, item.subject || item.task_id),
    h(
      "div",
      { class: "sub muted" },
      link(`#/dags/${enc(item.dag_id)}/grid`, item.dag_id),
      " · ",
      link(tiHref(item.dag_id, item.run_id, item.task_id, item.map_index), `${item.task_id}${item.map_index >= 0 ? `[${item.map_index}]` : ""}`),
      ` · waiting since ${fmtTime(item.since)}`,
      item.assigned_users && item.assigned_users.length ? ` · for ${item.assigned_users.join(", ")}` : "",
      item.timeout_at ? ` · times out ${fmtTime(item.timeout_at)}` : "",
    ),
    item.body ? h("p", { class: "body" }, item.body) : null,
    can("operator") ? answerForm(item, refresh) : h("p", { class: "muted small" }, `Options: ${item.options.join(", ")}`),
  );
}

export async function approvalsPage(ctx) {
  const dag = h("input", { type: "search", placeholder: "DAG id", value: ctx.query.get("dag_id") || "", "aria-label": "DAG id" });
  const body = h("div", { class: "approvals" });
  async function refresh() {
    let data;
    try {
      data = await get(`/approvals${qs({ dag_id: dag.value.trim() })}`);
    } catch (e) {
      fill(body, errorBox(e.message));
      throw e;
    }
    if (!ctx.alive()) return;
    // Do not redraw under a person typing an answer: only when what waits has changed.
    const signature = JSON.stringify(data.items.map((i) => [i.dag_id, i.run_id, i.task_id, i.map_index]));
    if (signature === body.dataset.signature) return;
    body.dataset.signature = signature;
    fill(body, ...(data.items.length ? data.items.map((i) => card(i, refresh)) : [h("p", { class: "muted empty" }, "Nothing waits for a person.")]));
  }
  dag.addEventListener("change", () => refresh().catch(() => {}));
  fill(ctx.main, h("div", { class: "page-head" }, h("h1", {}, "Approvals"), h("div", { class: "filters" }, dag)), body);
  await refresh();
  ctx.live(refresh, () => true); // an inbox: a request can arrive any moment
}
