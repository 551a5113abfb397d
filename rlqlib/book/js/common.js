// Shared by the explorers' ES modules (rlqlib.book.explorers.esm prepends this file to each module's source, since
// a module loaded from a blob: URL cannot import a sibling file).

function h(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of [].concat(children)) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// The payload's sprite sheet: a <style> to append once, and thumb(cell, props, style) boxes showing one cell.
function spriteSheet(sprite) {
  const sheet = "rlqx" + Math.random().toString(36).slice(2);
  const [cellH, cellW] = sprite.cell;
  return {
    style: h("style", {textContent: `.${sheet}{background-image:url("${sprite.uri}")}`}),
    thumb: (cell, props = {}, style = {}) => h("div", {
      className: `rlqx-thumb ${sheet}`, "data-cell": String(cell), ...props,
      style: {width: `${cellW}px`, height: `${cellH}px`, ...style,
        backgroundPosition: `-${(cell % sprite.columns) * cellW}px -${Math.floor(cell / sprite.columns) * cellH}px`},
    }),
  };
}
