"""Re-id datasets: the real on-disk layouts (LTCC, PRCC, LaST, DeepChange, Celeb-reID) and SynthCC.

Every loader parses **file names only** (never the full path: the reference's LTCC regex ran on the full path
and broke on folders containing ``_c``, docs/spec.md §9.10) and returns a :class:`ReIDDataset` of :class:`Sample`
records. Bad input raises :class:`DatasetError` naming the path and what was expected.

Relabelling follows docs/spec.md §7: train pids 0..N-1 in sorted order (Celeb-reID: first appearance in sorted file
order), train clothes keys relabelled in sorted string order; test pids stay raw except for Celeb-reID. Images
are never opened unless ``verify=True``. The val splits of PRCC, LaST and DeepChange are not loaded (the
reference loads them but never uses them).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})


class DatasetError(ValueError):
    """A dataset root, file name or annotation file is not what the loader expects."""


class Sample(NamedTuple):
    """One image. ``pid``/``clothes_id`` are relabelled to 0..N-1 on the train split (docs/spec.md §7)."""

    path: str
    pid: int
    camid: int
    clothes_id: int


@dataclass
class ReIDDataset:
    """A loaded dataset: named splits of samples plus what training needs.

    Attributes:
        name: registry key (``ltcc``, ``prcc``, ``last``, ``deepchange``, ``celebreid``, ``synthcc``).
        root: the folder the split folders were found in.
        splits: ordered mapping split name → samples. Always has ``train``; test splits are ``query`` and
            ``gallery`` (PRCC: ``query_same``, ``query_diff``, ``gallery``).
        train_pid_names: raw identity string of each relabelled train pid (``train_pid_names[pid]``), the key
            of the gender tables (docs/spec.md §6).
        num_train_clothes: number of train clothes classes.
        pid2clothes: bool array (num_train_pids, num_train_clothes), True where the identity wears the clothes.
        protocols: evaluation protocols that apply (``general``, ``cc``, ``sc``), docs/spec.md §8.
        query_sets: for each evaluation, (query split, gallery split) pairs, e.g. PRCC
            ``{"sc": ("query_same", "gallery"), "cc": ("query_diff", "gallery")}``.
        skipped: things skipped *by design*, with counts (e.g. ``{"junk_pid_-1": 12}``); never silent.
        eval_rules: for each key of ``query_sets``, the good/junk rule of docs/spec.md §8 to score it with
            (``general``, ``cc`` or ``sc``). PRCC scores both of its query sets with ``general``.
    """

    name: str
    root: Path
    splits: dict[str, list[Sample]]
    train_pid_names: list[str]
    num_train_clothes: int
    pid2clothes: np.ndarray
    protocols: tuple[str, ...]
    query_sets: dict[str, tuple[str, str]]
    skipped: dict[str, int] = field(default_factory=dict)
    eval_rules: dict[str, str] = field(default_factory=dict)

    @property
    def train(self) -> list[Sample]:
        return self.splits["train"]

    @property
    def num_train_pids(self) -> int:
        return len(self.train_pid_names)


# ------------------------------------------------------------------------------------------------ helpers


class _Raw(NamedTuple):
    """A parsed file before relabelling: raw pid (int and as written), camid, clothes key."""

    path: Path
    pid: int
    pid_name: str
    camid: int
    clothes: str


_CC_SC = ("general", "cc", "sc")
# (protocols, query_sets, eval_rules) per family, docs/spec.md §8.
_EVAL_ALL = (_CC_SC, {p: ("query", "gallery") for p in _CC_SC}, {p: p for p in _CC_SC})
_EVAL_GENERAL = (("general",), {"general": ("query", "gallery")}, {"general": "general"})
_EVAL_PRCC = (
    ("sc", "cc"),
    {"sc": ("query_same", "gallery"), "cc": ("query_diff", "gallery")},
    {"sc": "general", "cc": "general"},
)


def _count(skipped: dict[str, int], key: str, n: int = 1) -> None:
    if n:
        skipped[key] = skipped.get(key, 0) + n


def _resolve_root(root: str | Path, name: str, candidates: tuple[str, ...], required: tuple[str, ...]) -> Path:
    """Return the first ``root/candidate`` holding every ``required`` folder, else raise naming what was found."""
    root = Path(root).expanduser()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DatasetError(f"{name}: dataset root {root} {what}; pass the folder holding "
                           f"{', '.join(r + '/' for r in required)} (or its parent from the official archive)")
    for cand in candidates:
        base = root if cand == "." else root / cand
        if all((base / r).is_dir() for r in required):
            return base
    looked = [root if c == "." else root / c for c in candidates]
    found = {str(p): sorted(e.name + "/" for e in os.scandir(p) if e.is_dir()) for p in looked if p.is_dir()}
    raise DatasetError(f"{name}: unexpected layout: expected folders {', '.join(r + '/' for r in required)} in "
                       f"{' or '.join(str(p) for p in looked)}; folders found: {found}")


def _scan(folder: Path, skipped: dict[str, int]) -> tuple[list[Path], list[Path]]:
    """Images and sub-folders of ``folder``, each sorted by name; other and hidden entries are counted."""
    images, dirs, other = [], [], 0
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith("."):
            other += 1
        elif entry.is_dir():
            dirs.append(Path(entry.path))
        elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
            images.append(Path(entry.path))
        else:
            other += 1
    if other:
        logger.info("%s: skipped %d non-image entries", folder, other)
    _count(skipped, "non_image_entries", other)
    return images, dirs


def _flat_images(folder: Path, skipped: dict[str, int], expected: str) -> list[Path]:
    images, dirs = _scan(folder, skipped)
    if dirs:
        raise DatasetError(f"unexpected folder {dirs[0]}: {folder} should hold image files directly ({expected})")
    return images


def _nested_images(folder: Path, skipped: dict[str, int], expected: str) -> list[tuple[Path, Path]]:
    """(identity folder, image) pairs of a ``folder/<pid>/<image>`` tree, sorted by folder then file name."""
    images, dirs = _scan(folder, skipped)
    if images:
        raise DatasetError(f"image {images[0]} lies directly in {folder}; expected identity folders "
                           f"named by number holding the images ({expected})")
    out = []
    for d in dirs:
        if not d.name.isdigit():
            raise DatasetError(f"unexpected folder {d}: expected identity folders named by number (e.g. 001)")
        out.extend((d, p) for p in _flat_images(d, skipped, expected))
    return out


def _match(pattern: re.Pattern[str], path: Path, expected: str) -> re.Match[str]:
    m = pattern.fullmatch(path.stem)
    if m is None:
        raise DatasetError(f"unexpected file name {path.name!r} in {path.parent}: expected {expected}")
    return m


def _nonempty(items: list, split: str, folder: Path, expected: str) -> list:
    if not items:
        raise DatasetError(f"split {split!r} is empty: no images in {folder}; expected files like {expected}")
    return items


def _build_train(raws: list[_Raw], appearance_order: bool = False) -> tuple[list[Sample], list[str], np.ndarray]:
    """Relabel pids (sorted, or by first appearance) and clothes keys (sorted); build pid2clothes."""
    pids = list(dict.fromkeys(r.pid for r in raws)) if appearance_order else sorted({r.pid for r in raws})
    pid2label = {p: i for i, p in enumerate(pids)}
    names: dict[int, str] = {}
    for r in raws:
        names.setdefault(r.pid, r.pid_name)
    clothes2label = {c: i for i, c in enumerate(sorted({r.clothes for r in raws}))}
    samples = [Sample(str(r.path), pid2label[r.pid], r.camid, clothes2label[r.clothes]) for r in raws]
    pid2clothes = np.zeros((len(pids), len(clothes2label)), dtype=bool)
    labels = np.array([(s.pid, s.clothes_id) for s in samples], dtype=np.int64)  # (N, 2)
    pid2clothes[labels[:, 0], labels[:, 1]] = True
    return samples, [names[p] for p in pids], pid2clothes


def _build_test(splits: dict[str, list[_Raw]]) -> dict[str, list[Sample]]:
    """Raw pids and camids; clothes keys relabelled (sorted) over the union of the test splits."""
    keys = sorted({r.clothes for raws in splits.values() for r in raws})
    clothes2label = {c: i for i, c in enumerate(keys)}
    return {n: [Sample(str(r.path), r.pid, r.camid, clothes2label[r.clothes]) for r in raws]
            for n, raws in splits.items()}


def _verify_images(samples: list[Sample]) -> None:
    from PIL import Image
    from tqdm.auto import tqdm

    for s in tqdm(samples, desc="verify images", unit="img", disable=None, leave=False):
        try:
            with Image.open(s.path) as img:
                img.verify()
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types for corrupt files
            raise DatasetError(f"corrupt image {s.path}: Pillow cannot read it ({type(exc).__name__}: {exc}); "
                               "re-extract it from the dataset archive") from exc


def _make(name: str, base: Path, train: tuple[list[Sample], list[str], np.ndarray],
          test: dict[str, list[Sample]], evaluation: tuple, skipped: dict[str, int], verify: bool) -> ReIDDataset:
    samples, pid_names, pid2clothes = train
    protocols, query_sets, rules = evaluation
    ds = ReIDDataset(name=name, root=base, splits={"train": samples, **test}, train_pid_names=pid_names,
                     num_train_clothes=int(pid2clothes.shape[1]), pid2clothes=pid2clothes,
                     protocols=protocols, query_sets=dict(query_sets), skipped=skipped, eval_rules=dict(rules))
    if verify:
        _verify_images([s for split in ds.splits.values() for s in split])
    logger.info("%s loaded from %s: %s", name, base, {k: len(v) for k, v in ds.splits.items()})
    return ds


# ------------------------------------------------------------------------------------------------ LTCC, SynthCC

_LTCC_RE = re.compile(r"(\d+)_(\d+)_c(\d+)_(\d+)")
LTCC_PATTERN = "PPP_C_cKK_FFFFFF.png (person_clothes_camera_frame, e.g. 001_1_c11_015833.png)"


def _parse_ltcc(folder: Path, split: str, skipped: dict[str, int]) -> list[_Raw]:
    out = []
    for p in _flat_images(folder, skipped, LTCC_PATTERN):
        ppp, outfit, cam, _ = _match(_LTCC_RE, p, LTCC_PATTERN).groups()
        if int(cam) < 1:
            raise DatasetError(f"camera number c{cam} in {p.name!r} ({folder}): cameras are numbered from 1")
        out.append(_Raw(p, int(ppp), ppp, int(cam) - 1, f"{ppp}_{outfit}"))
    return _nonempty(out, split, folder, LTCC_PATTERN)


def _ltcc_like(name: str, base: Path, verify: bool) -> ReIDDataset:
    skipped: dict[str, int] = {}
    raw = {split: _parse_ltcc(base / d, split, skipped)
           for split, d in (("train", "train"), ("query", "query"), ("gallery", "test"))}
    test = _build_test({"query": raw["query"], "gallery": raw["gallery"]})
    return _make(name, base, _build_train(raw["train"]), test, _EVAL_ALL, skipped, verify)


def load_ltcc(root: str | Path, verify: bool = False) -> ReIDDataset:
    """LTCC: ``root/{train,query,test}`` or ``root/LTCC_ReID/...``; ``test/`` is the gallery.

    pid = PPP, camid = KK-1, clothes key = ``PPP_C``; test clothes relabelled over query ∪ gallery.

    Args:
        root: the ``LTCC_ReID`` folder or its parent.
        verify: open every image with Pillow and fail on a corrupt one.
    """
    base = _resolve_root(root, "ltcc", (".", "LTCC_ReID"), ("train", "query", "test"))
    return _ltcc_like("ltcc", base, verify)


def synthcc_manifest(root: str | Path) -> dict:
    """The ``synthcc.json`` manifest of a SynthCC folder (format ``synthcc-1``)."""
    path = Path(root).expanduser() / "synthcc.json"
    if not path.is_file():
        raise DatasetError(f"not a SynthCC folder: {path} is missing; generate one with `rlq synth --out {root}`")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path} is not valid JSON ({exc}); regenerate the folder with `rlq synth`") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != "synthcc-1":
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise DatasetError(f"{path}: format is {got!r}, expected 'synthcc-1'; regenerate with `rlq synth`")
    return manifest


def load_synthcc(root: str | Path, verify: bool = False) -> ReIDDataset:
    """SynthCC: the LTCC parse of the folder written by the generator (same splits, ids and clothes).

    The extras live beside it: :func:`synthcc_metadata` (per-image table), :func:`synthcc_manifest`, and
    :func:`load_synthcc_external` for the external sets (Celeb-reID layout).
    """
    synthcc_manifest(root)
    base = _resolve_root(root, "synthcc", (".",), ("train", "query", "test"))
    return _ltcc_like("synthcc", base, verify)


SYNTHCC_METADATA_COLUMNS = ("split", "image", "pid", "camid", "outfit", "clothes_key", "gender", "pose_family",
                            "view", "artifact", "artifact_param", "artifact_strength")


def synthcc_metadata(root: str | Path) -> pd.DataFrame:
    """``annotations/metadata.csv`` of a SynthCC folder: one row per image of every split.

    String columns (``image``, ``clothes_key``, ``artifact_param``, ...) stay strings (``"000_1"``, not 0);
    an empty ``artifact_param`` reads as ``""``.
    """
    import pandas as pd

    path = Path(root).expanduser() / "annotations" / "metadata.csv"
    if not path.is_file():
        raise DatasetError(f"SynthCC metadata {path} is missing; regenerate the folder with `rlq synth`")
    text_cols = ("split", "image", "clothes_key", "pose_family", "view", "artifact", "artifact_param")
    df = pd.read_csv(path, dtype={c: str for c in text_cols}, keep_default_na=False)
    missing = [c for c in SYNTHCC_METADATA_COLUMNS if c not in df.columns]
    if missing:
        raise DatasetError(f"{path}: missing columns {missing}; expected {', '.join(SYNTHCC_METADATA_COLUMNS)}")
    return df


SYNTHCC_EXTERNAL_SETS = ("external", "external_ntu", "pretrain")  # Celeb-reID-layout groups of a SynthCC folder


def load_synthcc_external(root: str | Path, which: str = "external", verify: bool = False,
                          unique_camids: bool = False) -> ReIDDataset:
    """A Celeb-reID-layout set of a SynthCC folder, loaded as Celeb-reID: ``external`` or ``external_ntu``, or
    ``pretrain`` (the large disjoint population a shared trunk is pretrained on; only in folders generated with
    ``SynthConfig.pretrain_ids > 0``)."""
    if which not in SYNTHCC_EXTERNAL_SETS:
        raise DatasetError(f"unknown SynthCC external set {which!r}; use 'external' or 'external_ntu' (or 'pretrain', "
                           "the pretraining group)")
    folder = Path(root).expanduser() / which
    if which == "pretrain" and not folder.is_dir():
        raise DatasetError(f"SynthCC folder {root} has no pretraining group ({folder} is missing); generate it with "
                           "a SynthConfig whose pretrain_ids > 0")
    return load_celebreid(folder, verify=verify, unique_camids=unique_camids)


# ------------------------------------------------------------------------------------------------ PRCC

_PRCC_TRAIN_RE = re.compile(r"([ABC])_cropped_rgb(\d+)")
_PRCC_TEST_RE = re.compile(r"cropped_rgb(\d+)")
PRCC_TRAIN_PATTERN = "<pid>/<CAM>_cropped_rgbNNN.jpg with CAM in A, B, C (e.g. 001/A_cropped_rgb001.jpg)"
PRCC_TEST_PATTERN = "<CAM>/<pid>/cropped_rgbNNN.jpg (e.g. A/001/cropped_rgb001.jpg)"
_PRCC_CAMS = {"A": 0, "B": 1, "C": 2}


def load_prcc(root: str | Path, verify: bool = False) -> ReIDDataset:
    """PRCC: ``root/rgb/...``, ``root/prcc/rgb/...`` or the ``rgb`` folder itself.

    Train: camid A=0, B=1, C=2; clothes key = pid folder for A/B, pid folder + ``C`` for C. Test (multi-shot):
    gallery = camera A, ``query_same`` = B, ``query_diff`` = C; raw pids; clothes = 2·rank(pid) (+1 for C),
    rank over the camera-A identities. Both query sets are scored with the general rule (docs/spec.md §8).
    """
    base = _resolve_root(root, "prcc", ("rgb", "prcc/rgb", "."), ("train", "test"))
    skipped: dict[str, int] = {}
    train = []
    for pdir, p in _nested_images(base / "train", skipped, PRCC_TRAIN_PATTERN):
        cam = _match(_PRCC_TRAIN_RE, p, PRCC_TRAIN_PATTERN).group(1)
        train.append(_Raw(p, int(pdir.name), pdir.name, _PRCC_CAMS[cam], pdir.name + ("C" if cam == "C" else "")))
    _nonempty(train, "train", base / "train", PRCC_TRAIN_PATTERN)
    per_cam: dict[str, list[tuple[Path, int]]] = {}
    for cam in _PRCC_CAMS:
        folder = base / "test" / cam
        if not folder.is_dir():
            found = sorted(e.name + "/" for e in os.scandir(base / "test") if e.is_dir())
            raise DatasetError(f"prcc: {folder} is missing; expected test/A/, test/B/, test/C/ (found {found})")
        pairs = _nested_images(folder, skipped, PRCC_TEST_PATTERN)
        for _, p in pairs:
            _match(_PRCC_TEST_RE, p, PRCC_TEST_PATTERN)
        per_cam[cam] = _nonempty([(p, int(d.name)) for d, p in pairs], f"test/{cam}", folder, PRCC_TEST_PATTERN)
    rank = {pid: i for i, pid in enumerate(sorted({pid for _, pid in per_cam["A"]}))}
    test: dict[str, list[Sample]] = {}
    for split, cam in (("query_same", "B"), ("query_diff", "C"), ("gallery", "A")):
        samples = []
        for p, pid in per_cam[cam]:
            if pid not in rank:
                raise DatasetError(f"prcc: identity {pid} of {p} has no images in the gallery {base / 'test' / 'A'}")
            samples.append(Sample(str(p), pid, _PRCC_CAMS[cam], 2 * rank[pid] + int(cam == "C")))
        test[split] = samples
    return _make("prcc", base, _build_train(train), test, _EVAL_PRCC, skipped, verify)


# ------------------------------------------------------------------------------------------------ LaST

_LAST_RE = re.compile(r"(\d+)(?:_\d+)*_(\d+)")
LAST_PATTERN = ("PPPPPP_..._CCC.jpg, underscore-separated numbers, first = person id, last = clothes index "
                "(e.g. 000004_003_00009_0262_00_001.jpg)")


def _parse_last(pairs: list[tuple[Path | None, Path]]) -> list[_Raw]:
    out = []
    for pdir, p in pairs:
        m = _match(_LAST_RE, p, LAST_PATTERN)
        pid_name = m.group(1)
        if pdir is not None and int(pdir.name) != int(pid_name):
            raise DatasetError(f"last: {p} has person id {pid_name} but lies in identity folder {pdir.name}")
        out.append(_Raw(p, int(pid_name), pid_name, len(out), f"{pid_name}_{m.group(2)}"))
    return out


def load_last(root: str | Path, verify: bool = False) -> ReIDDataset:
    """LaST: ``root/last/...`` or the ``last`` folder; ``train/<pid>/``, ``test/query/``, ``test/gallery/<pid>/``.

    Clothes key = ``<first field>_<last field>`` of the name. Test: camid = running image index (query
    0..Nq-1, gallery Nq...), clothes_id = pid (LaST has no test clothes labels); general protocol only.
    """
    base = _resolve_root(root, "last", ("last", "."), ("train", "test/query", "test/gallery"))
    skipped: dict[str, int] = {}
    train = _parse_last(_nested_images(base / "train", skipped, LAST_PATTERN))
    query = _parse_last([(None, p) for p in _flat_images(base / "test" / "query", skipped, LAST_PATTERN)])
    gallery = _parse_last(_nested_images(base / "test" / "gallery", skipped, LAST_PATTERN))
    for split, raws, folder in (("train", train, "train"), ("query", query, "test/query"),
                                ("gallery", gallery, "test/gallery")):
        _nonempty(raws, split, base / folder, LAST_PATTERN)
    test = {"query": [Sample(str(r.path), r.pid, r.camid, r.pid) for r in query],
            "gallery": [Sample(str(r.path), r.pid, len(query) + r.camid, r.pid) for r in gallery]}
    return _make("last", base, _build_train(train), test, _EVAL_GENERAL, skipped, verify)


# ------------------------------------------------------------------------------------------------ DeepChange

_DC_RE = re.compile(r"(p(\d+))_c(\d+)_(\d{8})_\w+")
DEEPCHANGE_PATTERN = "pPPPP_cCC_YYYYMMDD_HHMMSS_FFFFFF_bbox.jpg (e.g. p0003_c01_20201015_172644_000744_bbox.jpg)"


def _parse_deepchange(base: Path, folder: str, skipped: dict[str, int]) -> list[_Raw]:
    listing = base / f"{folder}-bbox.txt"
    if not listing.is_file():
        raise DatasetError(f"deepchange: list file {listing} is missing; expected one line "
                           f"'file_name,tracklet_id' per image of {base / folder}")
    present = {p.name for p in _flat_images(base / folder, skipped, DEEPCHANGE_PATTERN)}
    out, listed = [], set()
    for lineno, line in enumerate(listing.read_text().splitlines(), 1):
        if not line.strip():
            continue
        name, _, tracklet = (x.strip() for x in line.rpartition(","))
        if not name or not tracklet.isdigit():
            raise DatasetError(f"{listing}, line {lineno}: {line!r} is not 'file_name,tracklet_id'")
        path = base / folder / name
        if Path(name).name not in present and not path.is_file():
            raise DatasetError(f"{listing}, line {lineno}: listed image {path} does not exist")
        m = _match(_DC_RE, path, DEEPCHANGE_PATTERN)
        listed.add(Path(name).name)
        out.append(_Raw(path, int(m.group(2)), m.group(1), int(tracklet), m.group(1) + m.group(4)))
    _count(skipped, f"unlisted_{folder}", len(present - listed))
    out.sort(key=lambda r: r.path.name)
    return out


def load_deepchange(root: str | Path, verify: bool = False) -> ReIDDataset:
    """DeepChange: ``root/DeepChangeDataset/...`` or the folder itself, images listed by ``<split>-bbox.txt``.

    pid = number after ``p``, camid = tracklet id from the list, clothes key = ``pPPPP`` + capture date.
    Test pids stay raw; test clothes relabelled over query ∪ gallery; general protocol only. Images present
    in a split folder but absent from its list are not loaded and are counted in ``skipped``.
    """
    required = ("train-set", "test-set-query", "test-set-gallery")
    base = _resolve_root(root, "deepchange", ("DeepChangeDataset", "."), required)
    skipped: dict[str, int] = {}
    raw = {}
    for split, folder in zip(("train", "query", "gallery"), required):
        raw[split] = _nonempty(_parse_deepchange(base, folder, skipped), split, base / folder, DEEPCHANGE_PATTERN)
    test = _build_test({"query": raw["query"], "gallery": raw["gallery"]})
    return _make("deepchange", base, _build_train(raw["train"]), test, _EVAL_GENERAL, skipped, verify)


# ------------------------------------------------------------------------------------------------ Celeb-reID

_CELEB_RE = re.compile(r"(-?\d+)_(\d+)_(\d+)")
CELEB_PATTERN = "ID_IDX_Z.jpg (identity, image index, 0; e.g. 1_1_0.jpg)"


def _parse_celeb(folder: Path, split: str, skipped: dict[str, int], unique_camids: bool) -> list[_Raw]:
    out = []
    for p in _flat_images(folder, skipped, CELEB_PATTERN):
        pid, idx, _ = _match(_CELEB_RE, p, CELEB_PATTERN).groups()
        if pid == "-1":
            _count(skipped, "junk_pid_-1")
            continue
        camid = len(out) if unique_camids else int(idx[0]) - 1
        out.append(_Raw(p, int(pid), pid, camid, p.name))
    return _nonempty(out, split, folder, CELEB_PATTERN)


def load_celebreid(root: str | Path, verify: bool = False, unique_camids: bool = False) -> ReIDDataset:
    """Celeb-reID: ``root/{train,query,gallery}`` (or ``root/Celeb-reID/...``), ``.jpg`` or ``.png``.

    Every image is its own clothes class. camid = the reference's pseudo-camera (first digit of IDX minus 1)
    or, with ``unique_camids``, a running index per image (FIRe's fix, docs/spec.md §9.11). Train pids relabelled by
    first appearance in sorted file order; query pids likewise, gallery pids through the query map.
    """
    base = _resolve_root(root, "celebreid", (".", "Celeb-reID"), ("train", "query", "gallery"))
    skipped: dict[str, int] = {}
    train, query, gallery = (_parse_celeb(base / s, s, skipped, unique_camids) for s in ("train", "query", "gallery"))
    pid2label = {pid: i for i, pid in enumerate(dict.fromkeys(r.pid for r in query))}
    test = {"query": [Sample(str(r.path), pid2label[r.pid], r.camid, i) for i, r in enumerate(query)]}
    gallery_samples = []
    for i, r in enumerate(gallery):
        if r.pid not in pid2label:
            raise DatasetError(f"celebreid: gallery image {r.path} has identity {r.pid_name}, which has no query "
                               f"image in {base / 'query'}; Celeb-reID relabels gallery ids through the query ids")
        camid = len(query) + r.camid if unique_camids else r.camid
        gallery_samples.append(Sample(str(r.path), pid2label[r.pid], camid, len(query) + i))
    test["gallery"] = gallery_samples
    return _make("celebreid", base, _build_train(train, appearance_order=True), test, _EVAL_ALL, skipped, verify)


# ------------------------------------------------------------------------------------------------ registry, stats

DATASETS: dict[str, Callable[..., ReIDDataset]] = {
    "ltcc": load_ltcc,
    "prcc": load_prcc,
    "last": load_last,
    "deepchange": load_deepchange,
    "celebreid": load_celebreid,
    "synthcc": load_synthcc,
}


def load_dataset(name: str, root: str | Path, **kwargs) -> ReIDDataset:
    """Load dataset ``name`` (a key of :data:`DATASETS`) from ``root``; ``kwargs`` go to its loader."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return DATASETS[name](root, **kwargs)


def _summary(samples: list[Sample]) -> dict[str, int]:
    return {"ids": len({s.pid for s in samples}), "images": len(samples),
            "clothes": len({s.clothes_id for s in samples})}


def dataset_stats(ds: ReIDDataset) -> dict:
    """Table-1 statistics from the records alone (no image is opened); JSON-serialisable.

    Returns:
        ``{"dataset", "train": {"ids", "images", "clothes"}, "test": {...} (all non-train splits pooled),
        "splits": {split: {...}}, "skipped": {...}}``.
    """
    test = [s for name, samples in ds.splits.items() if name != "train" for s in samples]
    return {"dataset": ds.name, "train": _summary(ds.train), "test": _summary(test),
            "splits": {name: _summary(samples) for name, samples in ds.splits.items()},
            "skipped": dict(ds.skipped)}
