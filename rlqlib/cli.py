"""The ``rlq`` command line: thin wrappers that parse arguments, call rlqlib and print JSON.

Sub-commands (``rlq <command> --help`` for each):

* ``rlq synth --preset smoke|cpu|large --out DIR --seed N`` — generate the SynthCC benchmark.
* ``rlq stats --dataset ltcc|prcc|last|deepchange|celebreid|synthcc --root DIR`` — Table-1 statistics as JSON.
* ``rlq describe --variant cal|bm|bm+g|bm+p|rlq|fire2 --backbone resnet50 --num-ids 77 --num-clothes 256`` — parameter
  counts as JSON (the #Par column of Table 8).
* ``rlq poses cluster --keypoints FILE --k 15 --out labels.csv`` — AlphaPose-format keypoints → pose-cluster CSV
  in the authors' format (``Category,Image,R_LA_15``).
* ``rlq train --variant V --preset smoke|cpu|paper --dataset D --root DIR --seed N --out RUNS_DIR [--device …]
  [--set key=value …]`` — train (or load from the run cache) and print the run folder; works under torchrun.
* ``rlq runs --plan RUNS_SMOKE --preset P --dataset D --root DIR [--device cuda] --runs-dir RUNS --executor local|slurm
  --jobs N [--partition P]`` — train the book's run list (what ``make plan`` lists) without building the book; prints
  a table of the runs (worker or SLURM job, minutes, state).
* ``rlq evaluate --run RUN_DIR [--dataset D --root DIR]`` — re-score a trained run, print metrics JSON.
* ``rlq score --query Q.npz --gallery G.npz --protocol general|cc|sc`` — score saved features (any model's) and print
  ``top1``, ``top5``, ``mAP`` (fractions) and the number of valid queries as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path


def _cmd_synth(args: argparse.Namespace) -> int:
    from rlqlib.synthcc import generate as synth

    if args.preset not in synth.PRESETS:
        raise SystemExit(f"rlq synth: unknown preset {args.preset!r}; choose from {sorted(synth.PRESETS)}")
    cfg = synth.PRESETS[args.preset]
    sets = _parse_sets(args.set)
    unknown = sorted(set(sets) - {f.name for f in dataclasses.fields(cfg)} | ({"name"} & set(sets)))
    if unknown:
        raise SystemExit(f"rlq synth: --set {', '.join(unknown)}: not a SynthConfig field one may set; see "
                         "rlqlib/synthcc/config.py (e.g. --set pretrain_ids=600)")
    try:
        cfg = dataclasses.replace(cfg, **{k: tuple(v) if isinstance(v, list) else v for k, v in sets.items()})
    except ValueError as err:
        raise SystemExit(f"rlq synth: {err}") from None
    out = Path(args.out)
    manifest_path = out / "synthcc.json"
    if args.if_absent and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if (manifest.get("preset") == args.preset and manifest.get("seed") == args.seed
                and manifest.get("config") == synth.config_dict(cfg)):
            print(json.dumps({"out": str(out), "status": "present", **manifest.get("counts", {})}))
            return 0
        raise SystemExit(
            f"rlq synth: {out} holds SynthCC preset={manifest.get('preset')!r} seed={manifest.get('seed')!r} with "
            f"another configuration than preset={args.preset!r} seed={args.seed} {' '.join(args.set)}; remove it or "
            "choose another --out"
        )
    start = time.perf_counter()
    manifest = synth.generate(
        cfg, out, seed=args.seed, workers=args.workers, progress=not args.quiet
    )
    summary = {"out": str(out), "status": "generated", "seconds": round(time.perf_counter() - start, 1)}
    print(json.dumps({**summary, **manifest.get("counts", {})}))
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    from rlqlib.data import datasets as data

    ds = data.load_dataset(args.dataset, Path(args.root), verify=args.verify)
    print(json.dumps(data.dataset_stats(ds), indent=2))
    return 0


def _cmd_describe(args: argparse.Namespace) -> int:
    from rlqlib.methods import registry

    counts = registry.count_parameters(
        args.variant, backbone=args.backbone, num_ids=args.num_ids, num_clothes=args.num_clothes,
        num_pose=args.num_pose,
    )
    print(json.dumps({"variant": args.variant, "backbone": args.backbone, **counts}, indent=2))
    return 0


def _cmd_poses_cluster(args: argparse.Namespace) -> int:
    from rlqlib.data.pose import labels

    summary = labels.cluster_command(
        args.keypoints, args.k, args.out, variant=args.variant, category=args.category,
        image_size=tuple(args.image_size) if args.image_size else None, images=args.images,
        encoding=args.encoding, min_score=args.min_score, missing=args.missing,
    )
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _parse_sets(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"rlq: --set expects key=value (e.g. schedule.epochs=4), got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = {"true": True, "false": False, "none": None}.get(value.lower(), value)
    return out


def _init_distributed(device: str) -> None:
    import os

    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")


def _cmd_train(args: argparse.Namespace) -> int:
    from rlqlib.engine import presets
    from rlqlib.engine import runs

    overrides = {"seed": args.seed, "dataset": args.dataset, "root": args.root, **_parse_sets(args.set)}
    if args.device:
        overrides["device"] = args.device
    try:
        cfg = presets.make(args.preset, args.variant, **overrides)
    except KeyError as err:  # unknown preset / variant / --set key: a message, not a traceback
        raise ValueError(err.args[0]) from None
    _init_distributed(cfg.runtime.device)
    from rlqlib.methods.base import NonFiniteLossError
    from rlqlib.engine.train import CheckpointError

    try:
        run = runs.run_or_load(cfg, args.out)
    except (CheckpointError, NonFiniteLossError) as err:
        raise ValueError(str(err)) from None
    if runs._rank() == 0:
        print(str(run.dir))
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    import os

    from rlqlib.book import executors as X
    from rlqlib.book import plan as P
    from rlqlib.book import train_plan as TP

    if args.executor not in X.EXECUTORS:
        raise ValueError(f"unknown --executor {args.executor!r}; choose from {', '.join(X.EXECUTORS)}")
    try:
        planned = P.targets(args.plan, args.preset, args.dataset, args.root, args.runs_dir, args.device)
    except KeyError as err:  # unknown preset or variant: a message, not a traceback
        raise ValueError(err.args[0]) from None
    todo = TP.jobs(planned, args.runs_dir, args.only)
    workers = max(1, min(args.jobs, len(todo)))
    print(f"{len(planned)} planned runs at preset {args.preset}: {len(planned) - len(todo)} done or not needed, "
          f"{len(todo)} to train, {workers} at a time ({args.executor})", flush=True)
    if not todo:
        return 0
    gpus = None
    if args.gpu_per_worker:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        gpus = visible.split(",") if visible else [str(i) for i in range(workers)]
    options = {k: v for k, v in (("partition", args.partition), ("cluster", args.cluster),
                                 ("time_limit_min", args.time_limit)) if v is not None}
    outcomes = TP.train_jobs(todo, args.runs_dir, workers, args.threads, gpus, progress=not args.quiet,
                             executor=args.executor, **options)
    print("\n" + TP.summary(outcomes))
    failed = [o for o in outcomes if o.state != "done"]
    for o in failed:
        print(f"\n{o.job.run} failed" + (f"; log: {o.log}" if o.log else "") + "\n    " + "\n    ".join(o.tail),
              file=sys.stderr)
    print(f"\n{len(outcomes) - len(failed)} of {len(outcomes)} runs trained" + (f", {len(failed)} failed" if failed
                                                                                    else ""))
    return 1 if failed else 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from rlqlib.engine import runs
    from rlqlib.engine import train

    run = runs.load_run(args.run)
    cfg = run.config
    data = replace(cfg.data, dataset=args.dataset or cfg.data.dataset, root=args.root or cfg.data.root)
    cfg = replace(cfg, data=data, runtime=replace(cfg.runtime, device=args.device or "cpu", progress=False))
    try:
        result = train.evaluate_run(run.dir, cfg)
    except train.CheckpointError as err:  # truncated or foreign checkpoint: a message, not a traceback
        raise ValueError(str(err)) from None
    print(json.dumps({"run": str(run.dir), "dataset": cfg.data.dataset, "eval": result}, indent=1))
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from rlqlib.engine import ranking  # numpy only: no torch import (~0.8 s, more than scoring PRCC takes)

    print(json.dumps(ranking.score_files(args.query, args.gallery, args.protocol), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``rlq`` (exposed for tests and documentation)."""
    parser = argparse.ArgumentParser(prog="rlq", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="generate the SynthCC benchmark")
    p.add_argument("--preset", default="cpu", help="smoke (seconds) | cpu (book default) | large (GPU scale)")
    p.add_argument("--out", required=True, help="output folder (created; must be empty or absent)")
    p.add_argument("--seed", type=int, default=0, help="same seed => byte-identical files")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--if-absent", action="store_true", help="do nothing if OUT already holds this preset/seed")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a SynthConfig field of the preset, e.g. pretrain_ids=600 (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("stats", help="Table-1 statistics of a dataset as JSON")
    p.add_argument("--dataset", required=True, help="ltcc | prcc | last | deepchange | celebreid | synthcc")
    p.add_argument("--root", required=True, help="the dataset folder (or its parent, as unpacked)")
    p.add_argument("--verify", action="store_true", help="also open every image to detect corrupt files")
    p.set_defaults(func=_cmd_stats)

    p = sub.add_parser("describe", help="parameter counts of a model variant as JSON")
    p.add_argument("--variant", default="rlq", help="cal | bm | bm+g | bm+p | rlq | fire2 (FIRe²)")
    p.add_argument("--backbone", default="resnet50", help="resnet50 | resnet34 | resnet18 | resnet_tiny | resnet_micro")
    p.add_argument("--num-ids", type=int, default=77, help="training identities (LTCC: 77)")
    p.add_argument("--num-clothes", type=int, default=256, help="training clothes classes (LTCC: 256)")
    p.add_argument("--num-pose", type=int, default=16, help="pose classes, k + 1 (k = 15 clusters)")
    p.set_defaults(func=_cmd_describe)

    p = sub.add_parser("poses", help="coarse pose labels for CAP")
    poses = p.add_subparsers(dest="poses_command", required=True)
    p = poses.add_parser("cluster", help="AlphaPose-format keypoints JSON -> pose-cluster CSV (reference format)")
    p.add_argument("--keypoints", required=True, help="AlphaPose results JSON (or SynthCC's keypoints_<split>.json)")
    p.add_argument("--k", type=int, nargs="+", default=[15], help="cluster count(s), 5..40 (default 15)")
    p.add_argument("--out", required=True, help="CSV to write (Category,Image,R_LA_15,...)")
    p.add_argument("--variant", nargs="+", default=["R_LA"], help="R_LA | R_LAC | R_A (several allowed)")
    p.add_argument("--category", default="train", help="value of the Category column")
    p.add_argument("--images", default=None, help="image folder: sizes from the files, every image must be covered")
    p.add_argument("--image-size", type=int, nargs=2, metavar=("W", "H"), default=None,
                   help="when all images share one size (e.g. SynthCC: 64 128)")
    p.add_argument("--encoding", default="reference", help="reference (faithful) | improved (scaled, sin/cos angles)")
    p.add_argument("--min-score", type=float, default=None, help="mean keypoint confidence below which class 0")
    p.add_argument("--missing", default="error", help="error | zero: images with no keypoints (no person) -> class 0")
    p.set_defaults(func=_cmd_poses_cluster)

    p = sub.add_parser("train", help="train a variant (or load it from the run cache); prints the run folder")
    p.add_argument("--variant", required=True,
                   help="e.g. cal, id-only, bm, cap, tad, rlq, teacher; FIRe²: fire2, fire2-ffm-only, fire2-far-only "
                        "(rlqlib.engine.presets.VARIANTS)")
    p.add_argument("--preset", default="cpu", help="smoke | cpu | cpu-long | cpu-scratch | paper")
    p.add_argument("--dataset", default="synthcc", help="target dataset (synthcc, ltcc, prcc, ...)")
    p.add_argument("--root", required=True, help="dataset folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs", help="run cache folder (runs/<variant>-<hash12>/)")
    p.add_argument("--device", default=None, help="cpu | cuda (default: the preset's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. schedule.epochs=4 or runtime.amp=bf16 (repeatable)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("runs", help="train the book's run list (make plan's) locally or on SLURM, without the book")
    p.add_argument("--plan", required=True, metavar="RUNS_SMOKE",
                   help="run cache of an executed (smoke) book whose ledger lists the runs, e.g. runs-smoke")
    p.add_argument("--preset", default="cpu", help="the target preset (smoke | cpu | cpu-long | cpu-scratch | paper)")
    p.add_argument("--dataset", default="synthcc", help="target dataset (synthcc, ltcc, prcc, ...)")
    p.add_argument("--root", required=True, help="dataset folder")
    p.add_argument("--device", default=None, help="cpu | cuda (default: the preset's)")
    p.add_argument("--runs-dir", default="runs", help="the target run cache (shared by every worker)")
    p.add_argument("--executor", default="local", help="local (processes here) | slurm (one job per run, submitit)")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (local: processes; slurm: jobs in the queue)")
    p.add_argument("--threads", type=int, default=1,
                   help="local: runtime.threads per process (slurm: the preset's CPUs)")
    p.add_argument("--gpu-per-worker", action="store_true",
                   help="local: worker i sees only the i-th GPU (of CUDA_VISIBLE_DEVICES, else GPU i)")
    p.add_argument("--partition", default=None, help="slurm: the partition (default: the cluster's)")
    p.add_argument("--time-limit", type=int, default=None, metavar="MIN",
                   help="slurm: every job's time limit in minutes (default: from the preset and the run's epochs)")
    p.add_argument("--cluster", default=None, help="slurm: submitit's cluster; local or debug run it without SLURM")
    p.add_argument("--only", action="append", metavar="PAGE", help="only the runs of this page (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_runs)

    p = sub.add_parser("evaluate", help="re-score a trained run; prints metrics JSON")
    p.add_argument("--run", required=True, help="a run folder (holds config.json and checkpoint.pt)")
    p.add_argument("--dataset", default=None, help="evaluate on another dataset (default: the run's)")
    p.add_argument("--root", default=None, help="its folder (default: the run's)")
    p.add_argument("--device", default=None, help="cpu | cuda (default cpu)")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("score", help="score saved query/gallery features (.npz) under one protocol; prints JSON")
    p.add_argument("--query", required=True, help=".npz with feats (N,D), pids, camids[, clothes_ids]")
    p.add_argument("--gallery", required=True, help=".npz with the same arrays for the gallery")
    p.add_argument("--protocol", default="general", help="general | cc | sc")
    p.set_defaults(func=_cmd_score)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rlq`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError) as err:  # DatasetError is a ValueError: a message, not a traceback
        print(f"rlq {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
