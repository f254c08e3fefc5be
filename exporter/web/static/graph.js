// The lineage graph: fetched from /lineage.json, laid out left to right by dagre, drawn as SVG.
// Every name from the API reaches the page through textContent or setAttribute, never as HTML.
// The URL carries the whole view (name, direction, depth, as_of, compare): moving the time
// slider or the date fields redraws in place and rewrites the URL, so a link reproduces it.
(function () {
  "use strict";

  const SVG = "http://www.w3.org/2000/svg";
  const container = document.getElementById("graph");
  const status = document.getElementById("graph-status");
  const form = document.getElementById("controls");
  const slider = document.getElementById("time-slider");
  const asOfField = document.getElementById("as-of");
  const compareField = document.getElementById("compare");
  const heading = document.querySelector(".graph-page .focus-name");
  const tableLink = document.getElementById("table-link");
  let instants = [];
  let current = null; // the last answer of /lineage.json, plus expanded column edges
  let pending = 0;

  function params() {
    return new URLSearchParams(window.location.search);
  }

  // datetime-local fields hold UTC without a zone ("2026-03-01T12:00:00").
  function toField(iso) {
    return iso ? iso.replace("Z", "").slice(0, 19) : "";
  }

  function fromField(value) {
    return value ? value + "Z" : "";
  }

  function setParam(name, value) {
    const p = params();
    if (value) {
      p.set(name, value);
    } else {
      p.delete(name);
    }
    window.history.replaceState(null, "", "/lineage?" + p.toString());
  }

  function load() {
    const ticket = ++pending;
    status.textContent = "loading...";
    container.removeAttribute("data-rendered");
    return fetch("/lineage.json?" + params().toString(), { credentials: "same-origin" })
      .then((response) => response.json().then((body) => ({ ok: response.ok, body })))
      .then(({ ok, body }) => {
        if (ticket !== pending) {
          return; // a later request is on its way
        }
        if (!ok) {
          throw new Error(body.error || "request failed");
        }
        current = body;
        current.extra = [];
        instants = body.instants || [];
        syncControls(body);
        draw();
      })
      .catch((error) => {
        if (ticket === pending) {
          status.textContent = "error: " + error.message;
        }
      });
  }

  function syncControls(body) {
    heading.textContent = body.name;
    tableLink.setAttribute("href", "/table?" + new URLSearchParams({ name: body.name, as_of: body.as_of }));
    form.elements.name.value = body.name;
    asOfField.value = toField(body.as_of);
    compareField.value = toField(body.compare);
    slider.max = String(Math.max(instants.length - 1, 0));
    const asOf = Date.parse(body.as_of);
    let index = instants.length - 1;
    for (let i = 0; i < instants.length; i++) {
      if (Date.parse(instants[i].started_at) <= asOf) {
        index = i;
      }
    }
    slider.value = String(Math.max(index, 0));
    slider.setAttribute("aria-valuetext", body.as_of);
  }

  function textWidth(label) {
    return Math.max(60, Math.min(420, 7.2 * label.length + 24));
  }

  // An SVG element with its attributes (and its text, set as text: never parsed as markup).
  function el(tag, attributes, text) {
    const element = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      element.setAttribute(name, String(value));
    }
    if (text !== undefined) {
      element.textContent = text;
    }
    return element;
  }

  function draw() {
    const started = performance.now();
    const edges = current.edges.concat(current.extra);
    const names = new Map(current.nodes.map((n) => [n.name, n]));
    for (const edge of current.extra) {
      for (const end of [edge.source, edge.destination]) {
        if (!names.has(end)) {
          names.set(end, { name: end, focus: false, state: "both", column: true });
        }
      }
    }
    // Labels are placed on each drawn edge rather than laid out as nodes of their own, and ranks
    // come from a tight tree: on a 500-node graph that keeps layout well under a second.
    const g = new dagre.graphlib.Graph({ multigraph: true });
    g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 140, marginx: 16, marginy: 16, ranker: "tight-tree" });
    g.setDefaultEdgeLabel(() => ({}));
    for (const node of names.values()) {
      g.setNode(node.name, { width: textWidth(node.name), height: 30, node });
    }
    edges.forEach((edge, i) => {
      g.setEdge(edge.source, edge.destination, { edge, label: edge.deployment || edge.job || "" }, "e" + i);
    });
    dagre.layout(g);

    const size = g.graph();
    const svg = el("svg", {
      width: Math.ceil(size.width || 100), height: Math.ceil(size.height || 60), class: "lineage",
    });
    const marker = el("marker", {
      id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7,
      orient: "auto-start-reverse",
    });
    marker.appendChild(el("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }));
    svg.appendChild(el("defs")).appendChild(marker);
    for (const e of g.edges()) {
      svg.appendChild(drawEdge(g.edge(e)));
    }
    const tables = tableNames();
    for (const name of g.nodes()) {
      svg.appendChild(drawNode(g.node(name), tables));
    }
    container.replaceChildren(svg);
    const shown = current.compare ? " compared with " + current.compare : "";
    status.textContent = names.size + " nodes, " + edges.length + " edges as of " + current.as_of + shown;
    container.setAttribute("data-draw-ms", String(Math.round(performance.now() - started)));
    container.setAttribute("data-rendered", current.as_of + "|" + (current.compare || ""));
  }

  function drawEdge(laid) {
    const edge = laid.edge;
    const group = el("g", {
      class: "edge " + statusClass(edge.status) + " state-" + edge.state
        + (edge.level === "column" || !edge.level ? " column-edge" : ""),
      "data-source": edge.source,
      "data-destination": edge.destination,
      "data-job": edge.job,
      "data-state": edge.state,
    });
    group.appendChild(el("path", {
      d: laid.points.map((p, i) => (i ? "L" : "M") + p.x + " " + p.y).join(" "),
      "marker-end": "url(#arrow)",
    }));
    group.appendChild(el("title", {}, edge.source + " -> " + edge.destination + " (job " + edge.job
      + (edge.status ? ", " + edge.status : "") + ")"));
    if (laid.label) {
      const middle = midpoint(laid.points);
      group.appendChild(el("text", { x: middle.x, y: middle.y - 4, class: "edge-label" }, laid.label));
    }
    return group;
  }

  function drawNode(laid, tables) {
    const node = laid.node;
    const group = el("g", {
      class: "node state-" + node.state + (node.focus ? " focus" : "") + (node.column ? " column-node" : ""),
      "data-name": node.name,
      "data-state": node.state,
      transform: "translate(" + (laid.x - laid.width / 2) + "," + (laid.y - laid.height / 2) + ")",
    });
    group.appendChild(el("rect", { width: laid.width, height: laid.height, rx: 5 }));
    group.appendChild(el("text", { x: 10, y: 19 }, node.name));
    group.addEventListener("click", () => recentre(node.name));
    if (!node.column && tables.has(node.name)) {
      const expand = el("text", { x: laid.width - 16, y: 20, class: "expand", "data-expand": node.name }, "+");
      expand.addEventListener("click", (event) => {
        event.stopPropagation();
        expandColumns(node.name);
      });
      group.appendChild(expand);
    }
    return group;
  }

  // The nodes that are tables (a table-level graph's endpoints), which expand to their columns.
  function tableNames() {
    const tables = new Set();
    if (current.level === "column") {
      return tables;
    }
    for (const e of current.edges) {
      if (e.level === "table") {
        tables.add(e.source);
        tables.add(e.destination);
      }
    }
    tables.add(current.name);
    return tables;
  }

  // The point halfway along a polyline, where an edge's label goes.
  function midpoint(points) {
    let total = 0;
    for (let i = 1; i < points.length; i++) {
      total += Math.hypot(points[i].x - points[i - 1].x, points[i].y - points[i - 1].y);
    }
    let left = total / 2;
    for (let i = 1; i < points.length; i++) {
      const a = points[i - 1];
      const b = points[i];
      const step = Math.hypot(b.x - a.x, b.y - a.y);
      if (step >= left && step > 0) {
        return { x: a.x + ((b.x - a.x) * left) / step, y: a.y + ((b.y - a.y) * left) / step };
      }
      left -= step;
    }
    return points[points.length - 1];
  }

  function statusClass(value) {
    if (value === "RUNNING" || value === "FAILED") {
      return "status-" + value;
    }
    return "status-other";
  }

  function recentre(name) {
    setParam("name", name);
    load();
  }

  function expandColumns(table) {
    const query = new URLSearchParams({ table, as_of: current.as_of });
    fetch("/columns.json?" + query.toString(), { credentials: "same-origin" })
      .then((response) => response.json())
      .then((body) => {
        const known = new Set(current.extra.map((e) => e.source + "\u0000" + e.destination + "\u0000" + e.job));
        for (const edge of body.edges) {
          const key = edge.source + "\u0000" + edge.destination + "\u0000" + edge.job;
          if (!known.has(key)) {
            current.extra.push(Object.assign({ level: "column" }, edge));
          }
        }
        draw();
      });
  }

  slider.addEventListener("input", () => {
    const instant = instants[Number(slider.value)];
    if (!instant) {
      return;
    }
    asOfField.value = toField(instant.started_at);
    setParam("as_of", instant.started_at);
    load();
  });
  asOfField.addEventListener("change", () => {
    setParam("as_of", fromField(asOfField.value));
    load();
  });
  compareField.addEventListener("change", () => {
    setParam("compare", fromField(compareField.value));
    load();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const p = params();
    p.set("direction", form.elements.direction.value);
    p.set("depth", form.elements.depth.value);
    window.history.replaceState(null, "", "/lineage?" + p.toString());
    load();
  });

  load();
})();
