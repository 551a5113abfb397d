"""Interactive explorers (ipywidgets) used by the notebooks. Their state is saved with the executed notebook,
so the rendered HTML book shows them (with the output of the initial selection) without a kernel."""

from __future__ import annotations

from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display
from PIL import Image


def identity_browser(root: str | Path, split: str = "train", max_images: int = 12) -> widgets.VBox:
    """Pick a SynthCC identity and see its images, grouped by outfit and camera, with the artifact of each.

    Args:
        root: a SynthCC folder (with ``annotations/metadata.csv``).
        split: the split whose identities are listed.
        max_images: images shown per identity.
    """
    root = Path(root)
    meta = pd.read_csv(root / "annotations" / "metadata.csv", dtype={"image": str})
    meta = meta[meta["split"] == split]
    pids = sorted(meta["pid"].unique().tolist())
    if not pids:
        raise ValueError(f"{root / 'annotations' / 'metadata.csv'} has no rows for split {split!r}")
    pick = widgets.Dropdown(options=pids, value=pids[0], description="identity")
    out = widgets.Output()

    def show(pid: int) -> None:
        rows = meta[meta["pid"] == pid].sort_values(["outfit", "camid", "image"]).head(max_images)
        fig, axes = plt.subplots(1, len(rows), figsize=(1.1 * len(rows), 2.4), squeeze=False)
        for ax, (_, rec) in zip(axes[0], rows.iterrows()):
            ax.imshow(Image.open(root / split / rec["image"]).convert("RGB"))
            ax.set_title(f"o{rec['outfit']} c{rec['camid'] + 1}\n{rec['artifact']}", fontsize=6)
            ax.axis("off")
        gender = "male" if int(rows["gender"].iloc[0]) == 1 else "female"
        fig.suptitle(f"identity {pid} ({gender}): {rows['outfit'].nunique()} outfits, "
                     f"{rows['camid'].nunique()} cameras", fontsize=8)
        with out:
            out.clear_output(wait=True)
            display(fig)
        plt.close(fig)

    pick.observe(lambda change: show(change["new"]), names="value")
    show(pids[0])
    return widgets.VBox([pick, out])
