// The DAG's graph as SVG, laid out by the server's layer (column) and order (row) of each node.

const NS = "http://www.w3.org/2000/svg";
const NODE_W = 190;
const NODE_H = 44;
const GAP_X = 70;
const GAP_Y = 22;
const PAD = 16;

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function clip(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

// `graph` is GET /dags/{id}/graph: {nodes: [{id, label, operator, layer, order, state}], edges: [{source, target, label}]}.
// `hrefFor(node)` gives the link of a node (its task instance in the selected run), or null.
export function drawGraph(graph, hrefFor) {
  const pos = new Map();
  let maxLayer = 0;
  let maxOrder = 0;
  for (const n of graph.nodes) {
    const x = PAD + n.layer * (NODE_W + GAP_X);
    const y = PAD + n.order * (NODE_H + GAP_Y);
    pos.set(n.id, { x, y });
    maxLayer = Math.max(maxLayer, n.layer);
    maxOrder = Math.max(maxOrder, n.order);
  }
  const width = PAD * 2 + (maxLayer + 1) * NODE_W + maxLayer * GAP_X;
  const height = PAD * 2 + (maxOrder + 1) * NODE_H + maxOrder * GAP_Y;
  const svg = s("svg", { class: "graph", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": "DAG graph" });
  const defs = s("defs");
  const marker = s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }));
  defs.append(marker);
  svg.append(defs);

  for (const e of graph.edges) {
    const a = pos.get(e.source);
    const b = pos.get(e.target);
    if (!a || !b) continue;
    const x1 = a.x + NODE_W;
    const y1 = a.y + NODE_H / 2;
    const x2 = b.x;
    const y2 = b.y + NODE_H / 2;
    const mx = (x1 + x2) / 2;
    svg.append(s("path", { class: "edge", d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`, "marker-end": "url(#arrow)" }));
    if (e.label) {
      const label = s("text", { class: "edge-label", x: mx, y: (y1 + y2) / 2 - 4, "text-anchor": "middle" }, clip(e.label, 22));
      label.append(s("title", {}, e.label));
      svg.append(label);
    }
  }

  for (const n of graph.nodes) {
    const { x, y } = pos.get(n.id);
    const state = n.state || "none";
    const group = s("g", { class: `node st-${state}`, transform: `translate(${x} ${y})`, "data-task-id": n.id, "data-state": state });
    group.append(s("title", {}, `${n.id} (${n.operator || "task"}): ${n.state || "no state"}`));
    group.append(s("rect", { class: "node-box", width: NODE_W, height: NODE_H, rx: 6 }));
    group.append(s("rect", { class: "node-state", width: 6, height: NODE_H, rx: 3 }));
    group.append(s("text", { class: "node-label", x: 14, y: 19 }, clip(n.label || n.id, 24)));
    group.append(s("text", { class: "node-op", x: 14, y: 35 }, clip(`${n.operator || ""}${n.state ? ` · ${n.state}` : ""}`, 30)));
    const href = hrefFor ? hrefFor(n) : null;
    if (href) {
      const a = s("a", { href });
      a.append(group);
      svg.append(a);
    } else {
      svg.append(group);
    }
  }
  return svg;
}
