"""The kernel-free explorers: sprite sheets and payloads by hand, and their front-ends driven in headless Chromium.

The browser tests load each ES module the way anywidget does (a ``blob:`` import of its source) into a page opened
from ``file://``, with a stand-in model whose ``data`` is the payload, then change filters and pick queries.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from browser import cells, choose, chromium, remote, requests, wait_for
from conftest import colour
from rlqlib.book import explorers as X
from rlqlib.book import matches as M
from rlqlib.book.sprites import sprite_sheet


def _decode(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/jpeg;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"), np.int32)


def _cell_colour(sheet: np.ndarray, sprite, i: int) -> np.ndarray:
    x, y = sprite.offset(i)
    h, w = sprite.cell
    return sheet[y + 2:y + h - 2, x + 2:x + w - 2].reshape(-1, 3).mean(0)  # the cell's inside (JPEG edges blur)


def test_sprite_sheet_places_each_image_in_its_cell():
    colours = [(250, 10, 10), (10, 250, 10), (10, 10, 250), (240, 240, 10), (10, 240, 240)]
    images = [torch.tensor(c, dtype=torch.uint8)[:, None, None].expand(3, 30, 12).contiguous() for c in colours[:3]]
    images += [Image.new("RGB", (7, 20), colours[3]), np.full((9, 5, 3), colours[4], np.uint8)]
    sprite = sprite_sheet(images, height=16, columns=2)
    assert (sprite.columns, sprite.cell, sprite.count) == (2, (16, 8), 5)
    assert sprite.offset(3) == (8, 16) and sprite.offset(4) == (0, 32)
    sheet = _decode(sprite.uri)
    assert sheet.shape == (48, 16, 3)  # 3 rows × 2 columns of 16×8
    for i, c in enumerate(colours):
        assert np.abs(_cell_colour(sheet, sprite, i) - c).max() < 12, i
    assert sprite.state() == {"uri": sprite.uri, "columns": 2, "cell": [16, 8], "count": 5}


def test_sprite_sheet_errors_name_the_input(tmp_path):
    with pytest.raises(ValueError, match="missing.png"):
        sprite_sheet([str(tmp_path / "missing.png")])
    with pytest.raises(ValueError, match=r"\(3, H, W\) uint8"):
        sprite_sheet([torch.zeros(3, 4, 4)])
    with pytest.raises(ValueError, match="quality"):
        sprite_sheet([Image.new("RGB", (4, 8))], quality=0)


def test_match_payload_by_hand(images):
    q, g, da, db = images
    w = X.match_explorer(q, g, da, db, names=("RLQ", "CAL"), k=3, protocols=("general", "cc"), protocol="general",
                         thumb_height=16)
    d = w.data
    assert d["names"] == ["RLQ", "CAL"] and d["query"] == 0 and d["protocol"] == "general"  # A's largest AP gain
    assert d["attributes"] == ["gender", "pose_family", "artifact"]
    assert d["queries"]["gender"] == ["male", "female"] and d["queries"]["cell"] == [0, 1]
    gen = d["ranks"]["general"]
    assert gen["outcome"] == ["a_only", "b_only"] and gen["clothes"] == ["other", "same"]
    assert d["gallery"]["pid"] == [0, 1, 2]  # g0..g2: g3 is junk for q1 and in nobody's top-3
    a, b = gen["models"]
    assert a["top"] == [[0, 2, 1], [2, 1, 0]] and b["top"] == [[1, 2, 0], [1, 2, 0]]
    assert a["ok"] == [[1, 0, 0], [0, 1, 0]] and a["rank"] == [1, 2] and a["ap"] == [100.0, 50.0]
    assert b["rank"] == [3, 1] and b["dist"][0] == [0.1, 0.2, 0.4]
    cc_a = d["ranks"]["cc"]["models"][0]
    assert cc_a["top"][1] == [2, 0, -1] and cc_a["rank"][1] == 0  # q1 under cc: only g2 and g0 are not junk
    sheet = _decode(d["sprite"]["uri"])
    sprite = sprite_sheet([Image.new("RGB", (1, 1))] * 5, height=16)  # same geometry: 5 cells of 16×8
    for tag, table in (("q", d["queries"]), ("g", d["gallery"])):
        for row, cell in enumerate(table["cell"]):
            assert np.abs(_cell_colour(sheet, sprite, cell) - colour(tag, row)).max() < 14, (tag, row)


def test_match_explorer_errors(images):
    q, g, da, db = images
    base = ["path", "pid", "camid", "clothes_id"]
    assert X.match_explorer(q[base], g[base], torch.from_numpy(da), db, k=2, protocols=("general",)
                            ).data["attributes"] == []
    with pytest.raises(M.MatchExplorerError, match="not among the offered"):
        X.match_explorer(q, g, da, db, protocols=("general",), protocol="cc")
    with pytest.raises(M.MatchExplorerError, match="out of range"):
        X.match_explorer(q, g, da, db, query=5)
    with pytest.raises(M.MatchExplorerError, match=r"dist must be a floating \(2, 4\)"):
        X.match_explorer(q, g, da[:, :3], db)
    with pytest.raises(M.MatchExplorerError, match="lacks columns \\['path'\\]"):
        X.match_explorer(q.drop(columns="path"), g, da, db)


def _tsne_case(n: int = 4):
    hq = torch.stack([torch.full((3, 16, 8), 20 * i, dtype=torch.uint8) for i in range(n)])
    lq = 255 - hq
    maps = {"BM": np.c_[np.arange(2 * n), np.arange(2 * n) ** 2].astype(float),
            "RLQ": np.c_[np.arange(2 * n)[::-1], np.zeros(2 * n)].astype(float)}
    return dict(hq=hq, lq=lq, pids=list(range(10, 10 + n)), artifacts=["pixelation"] * n, maps=maps,
                lq_nearest={"BM": np.array([1, 0, 1, 1]), "RLQ": np.zeros(n)},
                twin_cosine={"BM": np.full(n, 0.5), "RLQ": np.full(n, 0.9)},
                scores={"BM": {"rate": 75.0, "rate_wide": 70.0, "k_wide": 3, "twin": 0.5},
                        "RLQ": {"rate": 0.0, "rate_wide": 10.0, "k_wide": 3, "twin": 0.9}})


def test_tsne_payload_by_hand():
    d = X.tsne_payload(**_tsne_case(), thumb_height=16)
    assert d["models"] == ["BM", "RLQ"] and d["n"] == 4 and d["sprite"]["count"] == 8
    assert d["points"]["BM"][5] == [5.0, 25.0] and d["lq_nn"]["BM"] == [1, 0, 1, 1]
    sheet = _decode(d["sprite"]["uri"])
    sprite = sprite_sheet([Image.new("RGB", (1, 1))] * 8, height=16)
    assert abs(_cell_colour(sheet, sprite, 1).mean() - 20) < 6 and abs(_cell_colour(sheet, sprite, 5).mean() - 235) < 6
    bad = _tsne_case()
    bad["maps"]["BM"] = bad["maps"]["BM"][:5]
    with pytest.raises(ValueError, match=r"\['BM'\] are not \(2N, 2\)"):
        X.tsne_payload(**bad)


# --------------------------------------------------------------------------------------------- in the browser


def _page(tmp_path: Path, module: str, data: dict) -> str:
    """A file:// page that renders ``module`` (rlqlib/book/js/) with a stand-in model, as anywidget does."""
    source = X.esm(module)
    page = tmp_path / "page.html"
    page.write_text(f"""<!doctype html><html><head><style>{(X.JS / "explorers.css").read_text()}</style></head><body>
<div id="root"></div><script>
const data = {json.dumps(data)};
const model = {{get: (key) => key === "data" ? data : {{}}, set: () => {{}},
               save_changes: () => {{ throw new Error("no kernel"); }}}};
const url = URL.createObjectURL(new Blob([{json.dumps(source)}], {{type: "text/javascript"}}));
import(url).then((m) => {{ m.default.render({{model, el: document.getElementById("root")}});
                          document.body.setAttribute("data-ready", "1"); }})
           .catch((e) => {{ document.body.setAttribute("data-error", String(e)); }});
</script></body></html>""")
    return page.as_uri()


@pytest.mark.browser
def test_match_explorer_front_end_filters_and_pages(images, tmp_path):
    from selenium.webdriver.common.by import By

    q, g, da, db = images
    data = X.match_explorer(q, g, da, db, names=("RLQ", "CAL"), k=3, protocols=("general", "cc"),
                            protocol="general").data
    with chromium(tmp_path / "profile") as driver:
        driver.get(_page(tmp_path, "match_explorer.js", data))
        wait_for(driver, "body[data-ready]")
        count = driver.find_element(By.CSS_SELECTOR, '[data-role="count"]')
        assert count.text == "2 of 2 queries"
        first = cells(driver, "gallery-a")
        assert first == ["2", "4", "3"]  # q0: g0, g2, g1 (cells: 2 queries first, then the used gallery rows)
        oks = [c.get_attribute("data-ok") for c in
               driver.find_elements(By.CSS_SELECTOR, '[data-role="gallery-a"] .rlqx-card')]
        assert oks == ["1", "0", "0"]
        choose(driver, "query", "1")  # another query: another gallery
        assert cells(driver, "gallery-a") == ["4", "3", "2"] and cells(driver, "query-card") == ["1"]
        choose(driver, "filter-outcome", "a_only")  # q1 does not pass: the view moves to q0
        assert count.text == "1 of 2 queries" and cells(driver, "gallery-a") == first
        choose(driver, "filter-outcome", "any")
        choose(driver, "filter-artifact", "pixelation")
        assert cells(driver, "query-card") == ["1"]
        choose(driver, "protocol", "cc")  # q1's only match wears its clothes: junk under cc
        assert "no correct match under cc" in driver.find_element(By.CSS_SELECTOR, '[data-role="gallery-a"]').text
        assert cells(driver, "gallery-a") == ["4", "2"]
        choose(driver, "filter-clothes", "both")
        assert count.text == "0 of 2 queries" and cells(driver, "gallery-a") == []
        choose(driver, "filter-clothes", "any")
        choose(driver, "filter-artifact", "any")
        choose(driver, "k", "1")
        assert len(cells(driver, "gallery-b")) == 1
        driver.find_element(By.CSS_SELECTOR, '[data-role="next"]').click()
        assert cells(driver, "query-card") == ["0"]  # wraps around
        assert not remote(requests(driver))
        assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.mark.browser
def test_tsne_explorer_front_end_shows_the_pointed_image(tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    data = X.tsne_payload(**_tsne_case(), thumb_height=16)
    with chromium(tmp_path / "profile") as driver:
        driver.get(_page(tmp_path, "tsne_explorer.js", data))
        wait_for(driver, "body[data-ready]")
        assert len(driver.find_elements(By.CSS_SELECTOR, "svg circle")) == 8
        assert "LQ neighbour 75.0 %" in driver.find_element(By.CSS_SELECTOR, '[data-role="score"]').text
        ActionChains(driver).move_to_element(driver.find_element(By.CSS_SELECTOR, 'circle[data-item="6"]')).perform()
        assert cells(driver, "detail") == ["2", "6"]  # pair 2: its HQ image and its LQ twin
        detail = driver.find_element(By.CSS_SELECTOR, '[data-role="detail"]').text
        assert "id 12" in detail and "LQ twin pointed at" in detail and "another LQ feature" in detail
        choose(driver, "model", "RLQ")
        driver.find_element(By.CSS_SELECTOR, 'circle[data-item="1"]').click()
        assert cells(driver, "detail") == ["1", "5"] and "an HQ feature" in driver.find_element(
            By.CSS_SELECTOR, '[data-role="detail"]').text
        assert not remote(requests(driver))


def _synth_folder(tmp_path: Path) -> Path:
    (tmp_path / "annotations").mkdir()
    (tmp_path / "train").mkdir()
    rows = []
    for i, (pid, outfit, cam) in enumerate([(4, 2, 1), (4, 1, 0), (4, 1, 3), (7, 5, 0)]):
        Image.new("RGB", (8, 16), (60 * i, 0, 0)).save(tmp_path / "train" / f"x{i}.png")
        rows.append({"split": "train", "image": f"x{i}.png", "pid": pid, "camid": cam, "outfit": outfit,
                     "gender": int(pid == 4), "artifact": "none" if i else "pixelation"})
    pd.DataFrame(rows).to_csv(tmp_path / "annotations" / "metadata.csv", index=False)
    return tmp_path


def test_identity_payload_groups_by_outfit_and_camera(tmp_path):
    d = X.identity_browser(_synth_folder(tmp_path), max_images=2, thumb_height=16).data
    assert d["ids"] == [4, 7] and d["gender"] == ["male", "female"] and d["outfits"] == [2, 1]
    assert d["total"] == [3, 1] and d["shown"] == [2, 1] and d["cells"] == [[0, 1], [2]]
    assert d["captions"][0] == [["o1 c1", "none"], ["o1 c4", "none"]]  # outfit 1 first, then by camera
    sheet = _decode(d["sprite"]["uri"])
    sprite = sprite_sheet([Image.new("RGB", (1, 1))] * 3, height=16)
    assert abs(_cell_colour(sheet, sprite, 1)[0] - 120) < 12  # x2.png (outfit 1, c4)
    with pytest.raises(ValueError, match="no rows for split 'query'"):
        X.identity_browser(tmp_path, split="query")
    with pytest.raises(ValueError, match="metadata.csv not found"):
        X.identity_browser(tmp_path / "nowhere")


@pytest.mark.browser
def test_identity_browser_front_end_steps_through_identities(tmp_path):
    from selenium.webdriver.common.by import By

    (tmp_path / "synth").mkdir()
    data = X.identity_browser(_synth_folder(tmp_path / "synth"), thumb_height=16).data
    with chromium(tmp_path / "profile") as driver:
        driver.get(_page(tmp_path, "identity_browser.js", data))
        wait_for(driver, "body[data-ready]")
        assert cells(driver, "images") == ["0", "1", "2"]
        assert driver.find_element(By.CSS_SELECTOR, '[data-role="title"]').text == "male: 2 outfits, 3 cameras"
        driver.find_element(By.CSS_SELECTOR, '[data-role="next"]').click()
        assert cells(driver, "images") == ["3"]
        choose(driver, "identity", "0")
        assert cells(driver, "images") == ["0", "1", "2"] and not remote(requests(driver))
