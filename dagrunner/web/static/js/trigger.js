// The trigger form, built from the DAG's Params: the JSON Schema type picks the input.

import { enc, post } from "./api.js";
import { errorBox, fill, flash, h } from "./dom.js";

function typeOf(spec) {
  const schema = spec.schema || {};
  let type = schema.type;
  if (Array.isArray(type)) type = type.find((t) => t !== "null");
  if (schema.enum) return "enum";
  if (type) return type;
  const value = spec.default;
  if (typeof value === "boolean") return "boolean";
  if (Number.isInteger(value)) return "integer";
  if (typeof value === "number") return "number";
  if (Array.isArray(value)) return "array";
  if (value !== null && typeof value === "object") return "object";
  return "string";
}

function allowsNull(spec) {
  const type = (spec.schema || {}).type;
  return spec.default === null || type === "null" || (Array.isArray(type) && type.includes("null"));
}

// One field: its input element and how to read a value from it (or throw a message naming the field).
export function field(name, spec) {
  const type = typeOf(spec);
  const id = `param-${name}`;
  const schema = spec.schema || {};
  const value = spec.default;
  let input;
  let read;
  if (type === "enum") {
    input = h("select", { id, name }, schema.enum.map((v, i) => h("option", { value: String(i) }, v === null ? "(none)" : String(v))));
    const index = schema.enum.findIndex((v) => JSON.stringify(v) === JSON.stringify(value));
    input.value = String(index >= 0 ? index : 0);
    read = () => schema.enum[Number(input.value)];
  } else if (type === "boolean") {
    input = h("input", { id, name, type: "checkbox", checked: Boolean(value) });
    read = () => input.checked;
  } else if (type === "integer" || type === "number") {
    input = h("input", { id, name, type: "number", step: type === "integer" ? "1" : "any", value: value ?? "", min: schema.minimum, max: schema.maximum });
    read = () => {
      if (input.value === "") {
        if (allowsNull(spec)) return null;
        throw new Error(`${name}: enter a number`);
      }
      const n = Number(input.value);
      if (type === "integer" && !Number.isInteger(n)) throw new Error(`${name}: must be a whole number`);
      return n;
    };
  } else if (type === "object" || type === "array") {
    input = h("textarea", { id, name, rows: 4, class: "json", spellcheck: "false" });
    input.value = value === undefined ? (type === "array" ? "[]" : "{}") : JSON.stringify(value, null, 2);
    read = () => {
      try {
        return JSON.parse(input.value);
      } catch (e) {
        throw new Error(`${name}: not valid JSON (${e.message})`);
      }
    };
  } else {
    input = h("input", { id, name, type: "text", value: value ?? "", maxlength: schema.maxLength, minlength: schema.minLength });
    read = () => (input.value === "" && allowsNull(spec) ? null : input.value);
  }
  const description = spec.description || schema.description;
  const row = h(
    "div",
    { class: `field field-${type}` },
    h("label", { for: id }, spec.title || schema.title || name, h("span", { class: "muted small" }, ` ${type}`)),
    input,
    description ? h("div", { class: "help muted small" }, description) : null,
  );
  return { row, read };
}

export function triggerForm(dag, onDone) {
  const params = dag.params || {};
  const fields = Object.entries(params).map(([name, spec]) => [name, field(name, spec || {})]);
  const runId = h("input", { id: "trigger-run-id", name: "run_id", type: "text", placeholder: "manual__<time> when empty", maxlength: 250 });
  const logicalDate = h("input", { id: "trigger-logical-date", name: "logical_date", type: "datetime-local", step: "1" });
  const error = h("div", { class: "form-error" });
  const submit = h("button", { class: "btn btn-primary", type: "submit", "data-testid": "trigger-submit" }, "Trigger");
  const form = h(
    "form",
    { class: "trigger-form", novalidate: true },
    fields.length ? h("fieldset", {}, h("legend", {}, "Params"), fields.map(([, f]) => f.row)) : h("p", { class: "muted" }, "This DAG has no params."),
    h(
      "details",
      { class: "advanced" },
      h("summary", {}, "Run id and logical date"),
      h("div", { class: "field" }, h("label", { for: "trigger-run-id" }, "Run id"), runId),
      h("div", { class: "field" }, h("label", { for: "trigger-logical-date" }, "Logical date (local time)"), logicalDate),
    ),
    error,
    h("div", { class: "form-actions" }, submit, h("a", { class: "btn btn-quiet", href: `#/dags/${enc(dag.dag_id)}/grid` }, "Cancel")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.replaceChildren();
    const conf = {};
    try {
      for (const [name, f] of fields) conf[name] = f.read();
    } catch (e) {
      fill(error, errorBox(e.message));
      return;
    }
    const body = {
      conf,
      run_id: runId.value.trim() || null,
      logical_date: logicalDate.value ? new Date(logicalDate.value).toISOString() : null,
    };
    submit.disabled = true;
    try {
      const run = await post(`/dags/${enc(dag.dag_id)}/runs`, body);
      flash(`Triggered ${run.run_id}`);
      onDone(run);
    } catch (e) {
      fill(error, errorBox(e.message));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
