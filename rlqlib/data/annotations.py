"""The reference's annotation tables (docs/spec.md §6): gender per identity and pose cluster per image.

Both are joined onto a loaded :class:`~rlqlib.data.datasets.ReIDDataset`: gender by the *raw* identity string of each
train pid (``ds.train_pid_names``), pose by an image identifier (file stem; PRCC/LaST ``<pid folder>_<stem>``).
A missing entry is an error naming the identity or image, the table file and the fix; nothing is defaulted.
Pose labels made here (:mod:`rlqlib.data.pose`) are written in the same format by :func:`write_pose_csv`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from rlqlib.data.datasets import DatasetError, ReIDDataset

GENDER_HEADER = ("Category", "ID", "Gender")
POSE_KEY_COLUMNS = ("Category", "Image")
# Datasets whose pose/faulty-list identifier is <pid folder>_<file stem> (docs/spec.md §6); the others use the stem.
_FOLDER_PREFIXED = frozenset({"prcc", "last"})
_STEM_ONLY = frozenset({"ltcc", "celebreid", "deepchange", "synthcc"})


class LabelTable(dict[str, int]):
    """A dict identifier → integer label that remembers the file (and column) it was read from.

    Attributes:
        source: the table's file, used in error messages.
        column: the column the labels come from (pose tables), else None.
    """

    def __init__(self, data: Mapping[str, int], source: str, column: str | None = None):
        super().__init__(data)
        self.source = source
        self.column = column


def _rows(path: Path) -> Iterable[tuple[int, list[str]]]:
    """(line number, stripped cells) of every non-blank CSV line (blank lines are skipped, docs/spec.md §9.22)."""
    if not path.is_file():
        raise DatasetError(f"annotation file {path} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        for cells in reader:
            if any(c.strip() for c in cells):
                yield reader.line_num, [c.strip() for c in cells]


def _int_label(value: str, path: Path, lineno: int, what: str) -> int:
    """Parse ``"1"`` or ``"10.0"`` to an int; anything else (``"1.5"``, ``""``) is an error."""
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number.is_integer():
        raise DatasetError(f"{path}, line {lineno}: {what} {value!r} is not an integer")
    return int(number)


def id_key(raw: str) -> int | str:
    """How the reference compares identity ids: numeric ids as ints (``"000"`` == ``"0"``), others as text."""
    s = raw.strip()
    return int(s) if s.isdigit() else s


def read_gender_csv(path: str | Path, categories: Iterable[str] | None = None) -> LabelTable:
    """Read a ``*_Gender.csv`` (header ``Category,ID,Gender``; 1 male, 0 female).

    Args:
        path: the CSV file.
        categories: keep only rows of these categories (e.g. ``{"query"}`` of ``LTCC_test_Gender.csv``);
            all rows by default.

    Returns:
        raw ID string as written → gender.
    """
    path = Path(path)
    rows = iter(_rows(path))
    header = next(rows, (0, []))[1]
    if tuple(header) != GENDER_HEADER:
        raise DatasetError(f"{path}: header is {','.join(header) or '(empty file)'}, expected Category,ID,Gender")
    keep = None if categories is None else set(categories)
    table: dict[str, int] = {}
    for lineno, cells in rows:
        if len(cells) != 3 or not cells[1]:
            raise DatasetError(f"{path}, line {lineno}: expected 'Category,ID,Gender', got {','.join(cells)!r}")
        category, ident, value = cells
        gender = _int_label(value, path, lineno, "gender")
        if gender not in (0, 1):
            raise DatasetError(f"{path}, line {lineno}: gender {value!r} must be 1 (male) or 0 (female)")
        if keep is not None and category not in keep:
            continue
        if table.get(ident, gender) != gender:
            raise DatasetError(f"{path}, line {lineno}: identity {ident} has conflicting genders")
        table[ident] = gender
    return LabelTable(table, str(path))


def _as_table(table: Mapping[str, int] | str | Path, reader) -> tuple[Mapping[str, int], str]:
    if isinstance(table, (str, Path)):
        table = reader(table)
    return table, getattr(table, "source", "the given table")


def gender_labels(ds: ReIDDataset, table: Mapping[str, int] | str | Path) -> np.ndarray:
    """Gender (1 male / 0 female) of each relabelled train pid of ``ds``, int64 array (num_train_pids,).

    Args:
        ds: a loaded dataset; its ``train_pid_names`` are matched to the table's IDs like the reference does
            (:func:`id_key`).
        table: the result of :func:`read_gender_csv`, or the CSV path.
    """
    table, source = _as_table(table, read_gender_csv)
    by_key: dict[int | str, int] = {}
    for ident, gender in table.items():
        if by_key.setdefault(id_key(ident), gender) != gender:
            raise DatasetError(f"{source}: ids equal to {ident!r} as numbers have conflicting genders")
    out = np.empty(ds.num_train_pids, dtype=np.int64)
    for pid, name in enumerate(ds.train_pid_names):
        key = id_key(name)
        if key not in by_key:
            raise DatasetError(f"identity {name!r} (train pid {pid} of {ds.name}) is missing from the gender table "
                               f"{source}; add a row 'train,{name},<1 male|0 female>' or pass this dataset's "
                               "gender file")
        out[pid] = by_key[key]
    return out


def read_pose_cluster_csv(path: str | Path, column: str = "R_LA_15") -> LabelTable:
    """Read one column of a ``*_Pose_Cluster.csv`` (header ``Category,Image,`` + 48 cluster columns).

    Values are stored as floats (``"10.0"``) and returned as ints; 0 = no usable pose (docs/spec.md §5).

    Returns:
        image identifier as written (e.g. ``000_1_c10_001003``) → cluster label; ``.column`` = ``column``.
    """
    path = Path(path)
    rows = iter(_rows(path))
    header = next(rows, (0, []))[1]
    if tuple(header[:2]) != POSE_KEY_COLUMNS or len(header) < 3:
        raise DatasetError(f"{path}: header starts {','.join(header[:3]) or '(empty file)'}, expected "
                           "Category,Image, then the cluster columns (e.g. R_LA_15)")
    if column not in header[2:]:
        raise DatasetError(f"{path}: no column {column!r}; available: {', '.join(header[2:])}")
    col = header.index(column)
    table: dict[str, int] = {}
    for lineno, cells in rows:
        if len(cells) != len(header) or not cells[1]:
            raise DatasetError(f"{path}, line {lineno}: expected {len(header)} fields, got {len(cells)}")
        if cells[1] in table:
            raise DatasetError(f"{path}, line {lineno}: image {cells[1]} appears twice")
        table[cells[1]] = _int_label(cells[col], path, lineno, f"{column} value")
    return LabelTable(table, str(path), column)


def write_pose_csv(path: str | Path, names: Sequence[str], columns: Mapping[str, Sequence[int]],
                   category: str = "train") -> None:
    """Write labels in the reference's ``*_Pose_Cluster.csv`` format (values as floats, ``10.0``).

    Args:
        path: the CSV to write.
        names: image file names or identifiers; the ``Image`` column is their stem.
        columns: column name (e.g. ``R_LA_15``) → (N,) labels in the order of ``names``.
        category: the ``Category`` value of every row.
    """
    for col, values in columns.items():
        if len(values) != len(names):
            raise ValueError(f"column {col} has {len(values)} labels for {len(names)} images")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["Category", "Image", *columns])
        for i, name in enumerate(names):
            writer.writerow([category, Path(name).stem, *(f"{float(v[i]):.1f}" for v in columns.values())])


def image_identifier(dataset: str, path: str | Path) -> str:
    """The identifier an image has in the pose and faulty-silhouette tables (docs/spec.md §6).

    LTCC, Celeb-reID, DeepChange, SynthCC: the file stem (``000_1_c10_001003``); PRCC and LaST:
    ``<pid folder>_<file stem>`` (``092_B_cropped_rgb118``).
    """
    p = Path(path)
    if dataset in _FOLDER_PREFIXED:
        return f"{p.parent.name}_{p.stem}"
    if dataset in _STEM_ONLY:
        return p.stem
    raise DatasetError(f"no image-identifier rule for dataset {dataset!r}; known: "
                       f"{', '.join(sorted(_FOLDER_PREFIXED | _STEM_ONLY))}")


def read_faulty_lists(paths: Iterable[str | Path]) -> set[str]:
    """The union of the authors' faulty-silhouette lists (``*_Pant_faulty.csv``, ``*_Shirt_faulty.csv``: no
    header, one image identifier per line, docs/spec.md §6); blank lines are skipped."""
    out: set[str] = set()
    for path in paths:
        path = Path(path)
        for lineno, cells in _rows(path):
            if len(cells) != 1 or not cells[0]:
                raise DatasetError(f"{path}, line {lineno}: expected one image identifier per line (e.g. "
                                   f"000_2_c8_001135), got {','.join(cells)!r}")
            out.add(cells[0])
    return out


def faulty_flags(ds: ReIDDataset, faulty: set[str]) -> np.ndarray:
    """(num_train_images,) bool: which train images of ``ds`` are in the faulty set (by :func:`image_identifier`)."""
    return np.array([image_identifier(ds.name, s.path) in faulty for s in ds.train], dtype=bool)


def pose_labels(ds: ReIDDataset, table: Mapping[str, int] | str | Path) -> np.ndarray:
    """Pose cluster of each train sample of ``ds`` (order of ``ds.train``), int64 array (num_train_images,).

    Args:
        ds: a loaded dataset.
        table: the result of :func:`read_pose_cluster_csv` (or the CSV path, read with column ``R_LA_15``).
    """
    table, source = _as_table(table, read_pose_cluster_csv)
    column = getattr(table, "column", None) or "?"
    out = np.empty(len(ds.train), dtype=np.int64)
    for i, sample in enumerate(ds.train):
        ident = image_identifier(ds.name, sample.path)
        if ident not in table:
            raise DatasetError(f"image {ident!r} ({sample.path}) is missing from the pose table {source} "
                               f"(column {column}); regenerate the pose clusters for this dataset's train "
                               "split (docs/spec.md §5) or pass the table that belongs to it")
        out[i] = table[ident]
    return out
