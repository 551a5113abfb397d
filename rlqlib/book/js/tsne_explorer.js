// Fig. 6 explorer (rlqlib.book.explorers.TsneExplorer): one model's t-SNE map of HQ features (blue) and their LQ
// twins (red); pointing at (or clicking) a point shows its image, its twin's, and whether the LQ feature's nearest
// neighbour is another LQ feature (the LQ-clustering score's per-item term). Everything comes from the widget's saved
// `data` (rlqlib.book.explorers.tsne_payload): no kernel, no network. `data-role` names are for the tests.

const SVG = "http://www.w3.org/2000/svg";


function s(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

function render({model, el}) {
  const d = model.get("data");
  const n = d.n, size = d.size, pad = 8;
  const sprite = spriteSheet(d.sprite);
  const thumb = (cell, color, role) => sprite.thumb(cell, {"data-role": role}, {borderColor: color});
  const picker = h("select", {"data-role": "model"});
  for (const name of d.models) picker.append(h("option", {value: name, textContent: name}));
  const score = h("div", {"data-role": "score"});
  const svg = s("svg", {width: size, height: size, viewBox: `0 0 ${size} ${size}`, "data-role": "map"});
  const detail = h("div", {"data-role": "detail"}, [h("i", {textContent: "point at a dot"})]);
  el.append(
    sprite.style,
    h("div", {className: "rlqx-tsne"}, [
      h("div", {className: "rlqx-row"}, [h("label", {className: "rlqx-control"}, [h("span", {textContent: "model"}),
        picker]), score]),
      h("div", {className: "rlqx-row"}, [svg, detail]),
    ]),
  );

  let dots = [], link = null;
  function pick(item) {  // item in 0..2n-1: < n an HQ image, else the LQ twin of item - n
    const pair = item % n, name = picker.value;
    dots.forEach((c) => c.classList.remove("rlqx-pick"));
    dots[pair].classList.add("rlqx-pick");
    dots[pair + n].classList.add("rlqx-pick");
    const [x1, y1] = [dots[pair].getAttribute("cx"), dots[pair].getAttribute("cy")];
    const [x2, y2] = [dots[pair + n].getAttribute("cx"), dots[pair + n].getAttribute("cy")];
    link.setAttribute("x1", x1); link.setAttribute("y1", y1); link.setAttribute("x2", x2); link.setAttribute("y2", y2);
    link.style.display = "";
    const lqNear = d.lq_nn[name][pair] === 1;
    detail.replaceChildren(
      h("b", {textContent: `pair ${pair} · id ${d.pid[pair]} · ${item < n ? "HQ image" : "LQ twin"} pointed at`}),
      h("div", {className: "rlqx-pair"}, [
        h("div", {}, [thumb(pair, d.colors.hq, "hq-image"), h("div", {textContent: "HQ"})]),
        h("div", {}, [thumb(n + pair, d.colors.lq, "lq-image"), h("div", {textContent: `LQ: ${d.artifact[pair]}`})]),
      ]),
      h("div", {textContent: `${name}: the LQ twin's nearest neighbour (without itself and its HQ twin) is `
        + (lqNear ? "another LQ feature" : "an HQ feature")}),
      h("div", {textContent: `HQ–LQ twin cosine ${d.twin_cos[name][pair].toFixed(2)}`}),
    );
  }

  function draw() {
    const name = picker.value, pts = d.points[name], sc = d.scores[name];
    score.textContent = `LQ-clustering score: LQ neighbour ${sc.rate.toFixed(1)} % (50 % = quality-blind), `
      + `LQ in ${sc.k_wide}-NN ${sc.rate_wide.toFixed(1)} %, twin cosine ${sc.twin.toFixed(2)}`;
    const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const sx = (x) => pad + (size - 2 * pad) * (x - x0) / (x1 - x0 || 1);
    const sy = (y) => size - pad - (size - 2 * pad) * (y - y0) / (y1 - y0 || 1);
    svg.replaceChildren();
    link = s("line", {stroke: "#000", "stroke-width": 1});
    link.style.display = "none";
    dots = pts.map(([x, y], i) => {
      const c = s("circle", {cx: sx(x).toFixed(1), cy: sy(y).toFixed(1), r: 3, fill: i < n ? d.colors.hq : d.colors.lq,
        "fill-opacity": 0.7, "data-item": i});
      c.addEventListener("mouseenter", () => pick(i));
      c.addEventListener("click", () => pick(i));
      return c;
    });
    svg.append(...dots, link);
    detail.replaceChildren(h("i", {textContent: "point at a dot"}));
  }

  picker.addEventListener("change", draw);
  draw();
}

export default {render};
