// Match explorer (rlqlib.book.explorers.MatchExplorer): two models' top-k for every query, filtered and paged in the
// browser from the widget's saved `data` (rlqlib.book.explorers.match_payload), so it works in Jupyter and in the
// static HTML book alike, without a kernel and without the network. Elements carry `data-role` names for the tests.

const CLOTHES = {other: "all in other clothes", same: "all in same clothes", both: "both", none: "no correct match"};
const ATTRIBUTE_LABELS = {camid: "camera", clothes: "correct matches wear", artifact: "artifact", gender: "gender",
  pose_family: "pose family", outcome: "top-1"};


function select(role, label, options, value) {
  const box = h("select", {"data-role": role});
  for (const [v, text] of options) box.append(h("option", {value: String(v), textContent: text}));
  box.value = String(value);
  return {box, wrap: h("label", {className: "rlqx-control"}, [h("span", {textContent: label}), box])};
}

function render({model, el}) {
  const d = model.get("data");
  const [A, B] = d.names;
  const sprite = spriteSheet(d.sprite);
  const outcomes = {both: `${A} ✓ ${B} ✓`, a_only: `${A} ✓ ${B} ✗`, b_only: `${A} ✗ ${B} ✓`,
    neither: `${A} ✗ ${B} ✗`, none: "no correct match"};
  const marks = {both: "✓✓", a_only: "✓✗", b_only: "✗✓", neither: "✗✗", none: "--"};
  const q = d.queries, g = d.gallery;
  const nq = q.pid.length;

  const thumb = (cell, color, title) => sprite.thumb(cell, {title}, {borderColor: color});
  const describe = (t, i) => {  // lines: labels; attributes; image quality
    const lines = [`id ${t.pid[i]} · c${t.camid[i] + 1} · clothes ${t.clothes_id[i]}`];
    const attrs = d.attributes.filter((a) => a !== "artifact").map((a) => t[a][i]);
    if (attrs.length) lines.push(attrs.join(" · "));
    if (d.attributes.includes("artifact")) lines.push(t.artifact[i] === "none" ? "HQ" : `LQ: ${t.artifact[i]}`);
    return lines;
  };

  // --- controls
  const state = {protocol: d.protocol, camid: "any", clothes: "any", artifact: "any", gender: "any",
    pose_family: "any", outcome: "any", query: d.query, k: d.k};
  const uniq = (xs) => [...new Set(xs)].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const controls = {};
  const add = (key, options) => {
    controls[key] = select(`filter-${key}`, ATTRIBUTE_LABELS[key] || key, options, state[key]);
  };
  controls.protocol = select("protocol", "protocol", d.protocols.map((p) => [p, p]), state.protocol);
  add("camid", [["any", "any"], ...uniq(q.camid).map((c) => [c, `c${c + 1}`])]);
  add("clothes", [["any", "any"], ...Object.entries(CLOTHES)]);
  for (const a of ["artifact", "gender", "pose_family"]) {
    if (d.attributes.includes(a)) add(a, [["any", "any"], ...uniq(q[a]).map((v) => [v, v])]);
  }
  add("outcome", [["any", "any"], ...Object.entries(outcomes)]);
  const kOptions = Array.from({length: d.k}, (_, i) => [i + 1, String(i + 1)]);
  controls.k = select("k", "k", kOptions, state.k);
  const picker = h("select", {"data-role": "query", className: "rlqx-query"});
  const prev = h("button", {textContent: "◀", title: "previous query", "data-role": "prev"});
  const next = h("button", {textContent: "▶", title: "next query", "data-role": "next"});
  const count = h("span", {className: "rlqx-count", "data-role": "count"});
  const info = h("div", {className: "rlqx-column", "data-role": "query-card"});
  const columns = [h("div", {className: "rlqx-column", "data-role": "gallery-a"}),
    h("div", {className: "rlqx-column", "data-role": "gallery-b"})];
  el.append(
    sprite.style,
    h("div", {className: "rlqx-explorer"}, [
      h("div", {className: "rlqx-row"}, Object.values(controls).map((c) => c.wrap)),
      h("div", {className: "rlqx-row"}, [h("label", {className: "rlqx-control"}, [h("span", {textContent: "query"}),
        picker]), prev, next, count]),
      h("div", {className: "rlqx-row rlqx-main"}, [info, ...columns]),
    ]),
  );

  let shown = [];
  const passes = (r, i) => ["camid", "artifact", "gender", "pose_family"].every(
    (key) => state[key] === "any" || String(q[key] ? q[key][i] : "") === state[key])
    && (state.clothes === "any" || r.clothes[i] === state.clothes)
    && (state.outcome === "any" || r.outcome[i] === state.outcome);

  function column(node, name, m, i) {
    const rank = m.rank[i];
    const head = rank > 0 ? `${name}: first correct at rank ${rank}, AP ${m.ap[i].toFixed(1)}%`
      : `${name}: no correct match under ${state.protocol}`;
    const cards = [];
    for (let j = 0; j < state.k && j < m.top[i].length; j++) {
      const gi = m.top[i][j];
      if (gi < 0) break;
      const ok = m.ok[i][j] === 1;
      cards.push(h("div", {className: "rlqx-card", "data-ok": ok ? "1" : "0"}, [
        thumb(g.cell[gi], ok ? d.colors.good : d.colors.bad, `gallery ${gi}`),
        h("div", {}, [`#${j + 1} ${ok ? "✓" : "✗"} d=${m.dist[i][j].toFixed(3)}`, ...describe(g, gi)].map(
          (line) => h("div", {textContent: line}))),
      ]));
    }
    node.replaceChildren(h("b", {textContent: head}), ...cards);
  }

  function show() {
    const r = d.ranks[state.protocol];
    const i = state.query;
    if (i === null) {
      info.replaceChildren(h("i", {textContent: "no query passes the filters"}));
      columns.forEach((c) => c.replaceChildren());
      return;
    }
    info.replaceChildren(h("b", {textContent: `query q${i}`}), h("div", {className: "rlqx-card"}, [
      thumb(q.cell[i], "#777", `query ${i}`),
      h("div", {}, [...describe(q, i), `top-1: ${outcomes[r.outcome[i]]}`,
        `correct matches: ${CLOTHES[r.clothes[i]]}`].map((line) => h("div", {textContent: line}))),
    ]));
    column(columns[0], A, r.models[0], i);
    column(columns[1], B, r.models[1], i);
    try {  // tell the kernel (in Jupyter) what is shown; the static book has no kernel to tell
      model.set("selection", {...state});
      Promise.resolve(model.save_changes()).catch(() => {});
    } catch (e) { /* no comm: a static page */ }
  }

  function refresh() {
    const r = d.ranks[state.protocol];
    shown = [];
    for (let i = 0; i < nq; i++) if (passes(r, i)) shown.push(i);
    if (!shown.includes(state.query)) state.query = shown.length ? shown[0] : null;
    picker.replaceChildren(...shown.map((i) => h("option", {
      value: String(i), textContent: `q${i} · id ${q.pid[i]} · c${q.camid[i] + 1}`
        + (q.artifact ? ` · ${q.artifact[i]}` : "") + ` · ${A}/${B} ${marks[r.outcome[i]]}`,
    })));
    if (state.query !== null) picker.value = String(state.query);
    count.textContent = `${shown.length} of ${nq} queries`;
    show();
  }

  for (const [key, c] of Object.entries(controls)) {
    c.box.addEventListener("change", () => {
      state[key] = key === "k" ? Number(c.box.value) : c.box.value;
      if (key === "k") show(); else refresh();
    });
  }
  picker.addEventListener("change", () => { state.query = Number(picker.value); show(); });
  const step = (delta) => {
    if (!shown.length) return;
    const at = shown.indexOf(state.query);
    state.query = shown[(at + delta + shown.length) % shown.length];
    picker.value = String(state.query);
    show();
  };
  prev.addEventListener("click", () => step(-1));
  next.addEventListener("click", () => step(1));
  refresh();
}

export default {render};
