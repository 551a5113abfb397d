// Identity browser (rlqlib.book.explorers.IdentityBrowser): a SynthCC identity's images grouped by outfit and camera,
// from the widget's saved `data` (rlqlib.book.explorers.identity_payload): no kernel, no network.


function render({model, el}) {
  const d = model.get("data");
  const sprite = spriteSheet(d.sprite);
  const picker = h("select", {"data-role": "identity"});
  d.ids.forEach((pid, i) => picker.append(h("option", {value: String(i), textContent: `identity ${pid}`})));
  const prev = h("button", {textContent: "◀", title: "previous identity", "data-role": "prev"});
  const next = h("button", {textContent: "▶", title: "next identity", "data-role": "next"});
  const title = h("b", {"data-role": "title"});
  const row = h("div", {className: "rlqx-row", "data-role": "images"});
  el.append(
    sprite.style,
    h("div", {className: "rlqx-explorer"}, [
      h("div", {className: "rlqx-row"}, [h("label", {className: "rlqx-control"}, [h("span", {textContent: d.split}),
        picker]), prev, next, title]),
      row,
    ]),
  );
  function show() {
    const i = Number(picker.value);
    title.textContent = `${d.gender[i]}: ${d.outfits[i]} outfits, ${d.cameras[i]} cameras`
      + (d.shown[i] < d.total[i] ? ` (${d.shown[i]} of ${d.total[i]} images shown)` : "");
    row.replaceChildren(...d.cells[i].map((cell, j) => h("div", {}, [
      sprite.thumb(cell, {}, {borderWidth: "1px"}),
      ...d.captions[i][j].map((line) => h("div", {textContent: line, style: {fontSize: "10px"}})),
    ])));
  }
  const step = (delta) => {
    picker.value = String((Number(picker.value) + delta + d.ids.length) % d.ids.length);
    show();
  };
  picker.addEventListener("change", show);
  prev.addEventListener("click", () => step(-1));
  next.addEventListener("click", () => step(1));
  show();
}

export default {render};
