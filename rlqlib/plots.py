"""The few figures the notebooks share, in one style, in one place."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image


def synth_preview(
    root: str | Path,
    n_ids: int = 4,
    per_id: int = 8,
    split: str = "train",
    seed: int = 0,
) -> plt.Figure:
    """A grid of SynthCC images: one row per identity, columns ordered by outfit then camera.

    Each tile is titled ``o<outfit> c<camera>`` and, for low-quality images, the artifact (``PX`` pixelation,
    ``MB`` motion blur, ``OOF`` out-of-focus) in red, so clothes changes, viewpoints and LQ cameras can be seen.

    Args:
        root: a SynthCC folder (with ``annotations/metadata.csv``).
        n_ids: identities (rows) to show; chosen among those with the most outfits, then at random.
        per_id: images per identity (columns), spread over its outfits and cameras.
        split: which split's identities to show.
        seed: picks the identities and images.
    """
    root = Path(root)
    meta = pd.read_csv(root / "annotations" / "metadata.csv", dtype={"image": str})
    meta = meta[meta["split"] == split]
    if meta.empty:
        raise ValueError(f"{root / 'annotations' / 'metadata.csv'} has no rows for split {split!r}")
    rng = np.random.default_rng(seed)
    outfits = meta.groupby("pid")["outfit"].nunique().sort_values(ascending=False, kind="stable")
    pids = outfits.index[: max(n_ids * 3, n_ids)].to_numpy()
    pids = np.sort(rng.choice(pids, size=min(n_ids, len(pids)), replace=False))
    short = {"none": "", "pixelation": "PX", "motion_blur": "MB", "out_of_focus": "OOF"}
    fig, axes = plt.subplots(len(pids), per_id, figsize=(1.1 * per_id, 2.3 * len(pids)), squeeze=False)
    for row, pid in zip(axes, pids):
        rows = meta[meta["pid"] == pid]
        # one image per (outfit, camera) first, so the row shows as many combinations as possible
        first = rows.drop_duplicates(["outfit", "camid"])
        rest = rows.drop(first.index)
        pick = pd.concat([first.sample(frac=1, random_state=seed), rest.sample(frac=1, random_state=seed)])
        pick = pick.head(per_id).sort_values(["outfit", "camid"], kind="stable")
        for ax in row:
            ax.axis("off")
        for ax, (_, rec) in zip(row, pick.iterrows()):
            ax.imshow(Image.open(root / split / rec["image"]).convert("RGB"))
            ax.set_title(f"o{rec['outfit']} c{rec['camid'] + 1}", fontsize=7)
            tag = short.get(rec["artifact"], rec["artifact"])
            if tag:
                ax.text(0.5, -0.06, tag, color="crimson", fontsize=7, ha="center", va="top",
                        transform=ax.transAxes)
        row[0].text(-0.15, 0.5, f"id {pid}", fontsize=8, rotation=90, ha="right", va="center",
                    transform=row[0].transAxes)
    fig.tight_layout()
    return fig
