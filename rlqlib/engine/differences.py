"""Where this code differs from the paper and from the authors' code: one :class:`Difference` record per point.

Each record names the config field (or preset value) that decides the behaviour, reads this code's default from a
real config (:func:`default_of`, the effective value of ``make(preset, variant)``) and names the switch to the other
behaviour, so the table the book shows (:func:`rlqlib.book.differences.differences_table`) follows the code; the
tests check that every field and switch exists and that each switch changes the field. The authors' code is
``ppriyank/RLQ-CGAL-UBD`` on ``guxinqian/Simple-CCReID`` (docs/spec.md); its behaviour is the default wherever it
is a real choice, the paper's version an option.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlqlib.engine.config import ExperimentConfig, effective
from rlqlib.engine.overrides import with_overrides
from rlqlib.engine.presets import make
from rlqlib.engine.teacher import teacher_config


@dataclass(frozen=True)
class Difference:
    """One point where the paper, the authors' code and this code may disagree.

    Attributes:
        key: short id (N…, M…: made faithful by the "faithful on the real datasets" issue; R…: older ones).
        what: the behaviour in a few words.
        paper: what the paper says (or that it is silent).
        authors: what the authors' code does (docs/spec.md).
        fields: the config fields (dotted; ``data.p×k`` for the batch) that decide it, read from the config of
            ``variant``; empty = not a config choice (a fixed implementation detail, or a function argument named
            in ``switch``).
        variant: the variant whose config is read (``teacher``: the TAD teacher of an ``rlq`` student).
        switch: how to get the other behaviour.
        synthcc: whether it matters on SynthCC (and at which presets).
        fixed: this code's behaviour when ``fields`` is empty.
        overrides: the switch as config overrides (checked by the tests to change ``fields``); empty when the
            switch is not a config override.
    """

    key: str
    what: str
    paper: str
    authors: str
    fields: tuple[str, ...]
    variant: str
    switch: str
    synthcc: str
    fixed: str = ""
    overrides: tuple[tuple[str, Any], ...] = ()


def config_for(diff: Difference, preset: str, dataset: str, **overrides: Any) -> ExperimentConfig:
    """The effective config whose ``diff.fields`` are shown (``teacher``: the teacher of an ``rlq`` student)."""
    opts: dict[str, Any] = {"dataset": dataset}
    if dataset != "synthcc" and preset in ("cpu", "cpu-long"):
        opts["model.init_root"] = "data/synthcc-cpu"  # the trunk comes from SynthCC's pretraining run
    if diff.variant == "teacher":
        teacher = teacher_config(make(preset, "rlq", **opts))
        return effective(with_overrides(teacher, **overrides) if overrides else teacher)
    return effective(make(preset, diff.variant, **opts, **overrides))


def value(cfg: ExperimentConfig, field: str) -> Any:
    """The value of a dotted field (``data.p×k`` gives ``"P×K"``)."""
    section, _, name = field.partition(".")
    if name == "p×k":
        return f"{cfg.data.p}×{cfg.data.k}"
    return getattr(getattr(cfg, section), name)


def default_of(diff: Difference, preset: str, dataset: str) -> str:
    """This code's default for ``diff`` under ``preset`` on ``dataset``: the fields' effective values."""
    if not diff.fields:
        return diff.fixed
    cfg = config_for(diff, preset, dataset)
    return ", ".join(f"{f} = {value(cfg, f)}" for f in diff.fields)


_STORED_SIZE = ("no at smoke/cpu: SynthCC stores its images at their input size (raw = input); yes at paper "
                "(SynthCC-large: 256×128 → 384×192)")

DIFFERENCES: tuple[Difference, ...] = (
    Difference("N1", "where TAD's low-quality twin is made", "silent (ranges quoted in pixels, §4)",
               "degrades the raw image, then resizes it to 384×192: motion-blur length, σ and pixelation act on "
               "the source resolution", ("data.degrade_at",), "rlq", "data.degrade_at=input", _STORED_SIZE,
               overrides=(("data.degrade_at", "input"),)),
    Difference("N2", "\"BM + LQ Aug.\" (Table 9)", "an LQ augmentation of the target set",
               "every sample adds a third, degraded view (batch 3B), made on the raw image with the LTCC mix and "
               "labelled with its original clothes class", ("data.lq_aug_mode", "data.lq_aug", "data.lq_aug_mix"),
               "bm+lq-aug", "data.lq_aug_mode=replace data.lq_aug=0.5 data.lq_aug_mix=target (each image replaced "
               "with probability 0.5 after augmentation)",
               "yes: 3B images per batch instead of 2B (SynthCC's mix is LTCC's, the mix changes nothing)",
               overrides=(("data.lq_aug_mode", "replace"), ("data.lq_aug", 0.5), ("data.lq_aug_mix", "target"))),
    Difference("N3", "faulty silhouettes", "silent",
               "the images of the *_faulty.csv lists are recoloured with their _clothes mask, both parts in one "
               "colour (clothes label c·C + c)", ("data.faulty_masks",), "bm", "data.faulty_masks=false",
               "no: SynthCC's masks are exact and it has no faulty list (unless named in data.faulty_csvs)",
               overrides=(("data.faulty_masks", False),)),
    Difference("M1", "keypoints onto the 192×384 canvas", "silent", "trunc(trunc(x)·(192/W)): the factor first",
               (), "cap", "none: the authors' arithmetic (x·192/W differs on ~0.04 % of coordinates)",
               "no: SynthCC's scale factors (6, 3, 1.5) are exact in binary",
               fixed="trunc(trunc(x)·(192/W)), as the authors"),
    Difference("M2", "recolouring palette", "silent", "6 colours (36 combinations) on LaST, 9 (81) elsewhere",
               ("data.colours",), "bm", "data.colours=all or data.colours=last",
               "no: SynthCC uses the 9 colours, as LTCC", overrides=(("data.colours", "last"),)),
    Difference("M3", "TAD teacher", "a Base Model trained on Celeb-reID",
               "the epoch-200 checkpoint of a run with 40 images per GPU (10 ids × 4)",
               ("schedule.epochs", "data.p×k"), "teacher",
               "rlqlib.engine.presets.TEACHER_PRESETS (paper: 200 epochs, 10×4; other presets: the preset's "
               "schedule and the student's P×K)", "paper preset only (smoke/cpu teachers are unchanged)"),
    Difference("M4", "vanilla CAL baseline batch", "batch 64",
               "K = 8: 32 per GPU (4 ids × 8) on 2 GPUs", ("data.p×k",), "cal",
               "data.p=8 data.k=4; the 2 GPUs: torchrun --nproc_per_node 2",
               "paper preset only (rlqlib.engine.presets.CAL_PRESETS)",
               overrides=(("data.p", 8), ("data.k", 4))),
    Difference("M5", "which AlphaPose person is kept", "silent", "the highest detector score (yolo_scores)",
               (), "cap", "read_alphapose(…, person=\"pose\"), cluster_command(…, person=\"pose\")",
               "no: SynthCC's keypoint files hold one person per image",
               fixed="the highest detector score (AlphaPose's score − mean − 1.25·max keypoint score)"),
    Difference("R1", "KL between the branches' id logits", "a KL term with weight 1",
               "0.64·τ²·KL summed over rows and classes / (rows · classes), τ = 0.8", ("losses.kl_reduction",),
               "bm", "losses.kl_reduction=batchmean", "yes (the term's weight)",
               overrides=(("losses.kl_reduction", "batchmean"),)),
    Difference("R2", "TAD's clothes-logit self-supervision term", "three live KL terms",
               "the clothes term is inert (detached features, its classifier not stepped)",
               ("losses.tad_clothes_term",), "rlq", "losses.tad_clothes_term=paper", "yes",
               overrides=(("losses.tad_clothes_term", "paper"),)),
    Difference("R3", "which epoch is reported", "best numbers",
               "the best test epoch (checkpoint selection on the test set)", (), "bm", "none", "yes",
               fixed="the last epoch: no selection on the test set"),
    Difference("R4", "where clothes are recoloured", "silent", "on the raw image with raw-size masks, then resized",
               (), "bm", "none", _STORED_SIZE,
               fixed="on the stored image at the input size (masks resized with nearest neighbour)"),
    Difference("R5", "data-parallel layout", "2 GPUs",
               "2 processes: BN statistics per GPU, triplet mining over the gathered batch", (), "bm",
               "torchrun --nproc_per_node 2 rlq train …", "yes",
               fixed="one process unless started under torchrun (P×K is per process)"),
    Difference("R6", "augmentation random stream", "silent",
               "Python's random is reseeded per worker every epoch: crops, erasing, colours and LQ parameters "
               "replay each epoch", (), "bm", "none", "yes",
               fixed="one explicit torch.Generator per pass, a fresh stream every epoch"),
    Difference("R7", "ranking ties in evaluation", "silent", "numpy's unstable argsort", (), "bm", "none",
               "rarely (exact ties only)", fixed="stable: ties broken by gallery index"),
    Difference("C1", "learning rate of the new external classifiers (CAL-id, clothes)", "one Adam rate, 3.5e-4",
               "one rate for the model and both classifiers", ("schedule.heads_lr_mult",), "cal",
               "schedule.heads_lr_mult=1 (the cpu preset's 20 is its only value other than 1)",
               "cpu preset only: the classifiers learn at 20× the trunk's rate in the 2-epoch target runs (with one "
               "rate CAL does not beat identity-only there; docs/synthcc-probes.md §4–§5); 10× in its TAD teacher; "
               "not the pretraining run, not FIRe² (no external classifiers)"),
    Difference("C2", "CAL's adversarial label smoothing ε", "ε = 0.1 (CAL's paper)", "ε = 0.1",
               ("losses.adv_epsilon",), "cal", "losses.adv_epsilon=0.1",
               "cpu and cpu-long presets only: ε = 1 (with 0.1 the short runs lose 5–7 CC top-1 points; "
               "docs/synthcc-probes.md §4)"),
    Difference("C3", "the weights a run ends with", "the last step's", "the last step's", ("schedule.ema_decay",),
               "cal", "schedule.ema_decay=0 (the cpu preset's 0.98 is its only value other than 0)",
               "cpu preset only: each 2-epoch target run ends with a moving average of its weights over about its "
               "last 50 steps, which is evaluated and checkpointed (it halves the seed noise there; "
               "docs/synthcc-probes.md §5); not the pretraining run, not the TAD teacher"),
)


def record(key: str) -> Difference:
    """The record ``key``."""
    for d in DIFFERENCES:
        if d.key == key:
            return d
    raise KeyError(f"no difference {key!r}; known: {[d.key for d in DIFFERENCES]}")
