#!/usr/bin/env bash
# Vendor the JavaScript the HTML book needs at read time, so it renders offline (no CDN):
#   @jupyter-widgets/html-manager@1.0.15  dist/embed-amd.js (+ the icon fonts it loads next to itself)
#   requirejs@2.3.8                       require.js
#   mathjax@3.2.2                         es5/tex-chtml.js and what it loads at run time:
#                                         output/ (CHTML fonts), input/ (TeX extensions, autoloaded),
#                                         ui/ (menu), a11y/ and sre/ (accessibility, loaded on demand)
#   anywidget (the pinned PyPI package)   nbextension/index.js: its front-end as an AMD module, copied from the
#                                         virtualenv (VENDOR_PY, default .venv/bin/python), which the widget
#                                         manager loads for the book's explorers (rlqlib.book.explorers)
# into the git-ignored _widgets/ folder (served as _static/ by Sphinx via html_static_path).
#
# Idempotent: when every expected file is present and DEST/.vendored holds this script's stamp, it does
# nothing. Otherwise it fetches the three packages with `npm pack` (the npm registry), assembles them in a
# staging folder, verifies it (any missing file is an error naming it) and only then replaces DEST.
#
# Usage: scripts/vendor_assets.sh [DEST]      (DEST defaults to _widgets next to this script's parent)
set -euo pipefail

HTML_MANAGER="@jupyter-widgets/html-manager@1.0.15"
REQUIREJS="requirejs@2.3.8"
MATHJAX="mathjax@3.2.2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${1:-$(cd "$here/.." && pwd)/_widgets}"
py="${VENDOR_PY:-$(cd "$here/.." && pwd)/.venv/bin/python}"
anywidget_dir="$("$py" -c 'import anywidget, pathlib; print(pathlib.Path(anywidget.__file__).parent)' 2>/dev/null)" || {
  echo "vendor_assets: cannot import anywidget with $py; run 'make setup' first (or set VENDOR_PY)" >&2; exit 1; }
anywidget_version="$("$py" -c 'import anywidget; print(anywidget.__version__)')"
anywidget_license="$("$py" -c 'import importlib.metadata as m; d = m.distribution("anywidget"); print(next(str(d.locate_file(f)) for f in d.files if f.name == "LICENSE"))')"

# Written to DEST/.vendored; a folder with another stamp (other versions, older layout) is re-vendored.
# Bump the layout number when this script changes what it writes.
STAMP="$HTML_MANAGER $REQUIREJS $MATHJAX anywidget@$anywidget_version layout-3"

# What must exist after vendoring (relative to DEST). The woff-v2 fonts are the ones CHTML loads.
expected=(
  require.js
  embed-amd.js
  widgets-require-config.js
  mathjax/tex-chtml.js
  mathjax/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff
  mathjax/output/chtml/fonts/woff-v2/MathJax_Math-Italic.woff
  mathjax/output/chtml/fonts/woff-v2/MathJax_Size1-Regular.woff
  mathjax/input/tex/extensions/ams.js
  mathjax/ui/menu.js
  mathjax/a11y/explorer.js
  mathjax/sre/mathmaps/en.json
  LICENSES/html-manager.package.json
  LICENSES/requirejs.package.json
  LICENSES/mathjax.package.json
  LICENSES/mathjax.LICENSE
  anywidget/index.js
  LICENSES/anywidget.LICENSE
)

missing() {  # folder -> the expected files it lacks, one a line
  local f
  for f in "${expected[@]}"; do
    [[ -s "$1/$f" ]] || echo "$f"
  done
}

if [[ -d "$dest" && -z "$(missing "$dest")" && "$(cat "$dest/.vendored" 2>/dev/null)" == "$STAMP" ]]; then
  echo "vendor_assets: $dest complete, nothing to do"
  exit 0
fi

command -v npm >/dev/null || { echo "vendor_assets: npm not found; install Node.js (npm) to fetch the book's JS assets" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "vendor_assets: npm pack $HTML_MANAGER $REQUIREJS $MATHJAX"
(cd "$work" && npm pack --silent "$HTML_MANAGER" "$REQUIREJS" "$MATHJAX" >/dev/null) || {
  echo "vendor_assets: 'npm pack' failed; is the npm registry reachable?" >&2; exit 1; }

unpack() {  # tarball-glob target-dir
  local tgz
  tgz="$(ls "$work"/$1)" || { echo "vendor_assets: npm pack produced no $1" >&2; exit 1; }
  mkdir -p "$work/$2"
  tar xzf "$tgz" -C "$work/$2"
}
unpack 'jupyter-widgets-html-manager-*.tgz' hm
unpack 'requirejs-*.tgz' rq
unpack 'mathjax-*.tgz' mj

# Assemble in a staging folder, then swap it in, so an interrupted run never leaves a half folder.
stage="$work/stage"
mkdir -p "$stage/mathjax" "$stage/LICENSES"
hm="$work/hm/package"; rq="$work/rq/package"; mj="$work/mj/package"
cp "$hm/dist/embed-amd.js" "$stage/"
# The icon fonts embed-amd.js references (see widgets-require-config.js below).
cp "$hm"/dist/*.{woff2,woff,ttf,eot,svg} "$stage/"
# embed-amd.js bundles several AMD modules (@jupyter-widgets/base, controls, html-manager, ...); each takes its
# public path (where the icon fonts are) from its requirejs module URL, which by default resolves next to the
# *page*. This config, loaded before require.js, resolves them all to _static/.
cat > "$stage/widgets-require-config.js" <<'JS'
// Written by scripts/vendor_assets.sh; loaded before require.js. Resolves the @jupyter-widgets modules that
// embed-amd.js defines to the folder of this script (_static/), so the fonts they bundle load from there, and
// anywidget's front-end module (the book's explorers) to its vendored copy.
var require = (function () {
  var here = document.currentScript.src.replace(/\/[^/]*$/, "");
  return {paths: {"@jupyter-widgets": here, "@jupyter-widgets/html-manager/dist": here,
                  "anywidget": here + "/anywidget/index"}};  // before the manager's CDN fallback
})();
JS
cp "$rq/require.js" "$stage/"
cp "$mj/es5/tex-chtml.js" "$stage/mathjax/"
cp -r "$mj/es5/output" "$mj/es5/input" "$mj/es5/ui" "$mj/es5/a11y" "$mj/es5/sre" "$stage/mathjax/"
# Licences: html-manager BSD-3-Clause, requirejs MIT (declared in package.json), MathJax Apache-2.0.
cp "$hm/package.json" "$stage/LICENSES/html-manager.package.json"
cp "$hm/dist/embed.js.LICENSE.txt" "$stage/LICENSES/html-manager.bundled-notices.txt"
cp "$rq/package.json" "$stage/LICENSES/requirejs.package.json"
cp "$mj/package.json" "$stage/LICENSES/mathjax.package.json"
cp "$mj/LICENSE" "$stage/LICENSES/mathjax.LICENSE"
# anywidget (MIT): its AMD front-end, which imports each widget's ES module from the saved state (a blob: URL).
mkdir -p "$stage/anywidget"
cp "$anywidget_dir/nbextension/index.js" "$stage/anywidget/index.js"
cp "$anywidget_license" "$stage/LICENSES/anywidget.LICENSE"

gone="$(missing "$stage")"
if [[ -n "$gone" ]]; then
  echo "vendor_assets: after unpacking, these files are missing:" >&2
  echo "$gone" | sed 's/^/  /' >&2
  echo "the package layout changed; update scripts/vendor_assets.sh ($dest left as it was)" >&2
  exit 1
fi
echo "$STAMP" > "$stage/.vendored"
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$stage" "$dest"
echo "vendor_assets: wrote $dest ($(du -sh "$dest" | cut -f1))"
