"""Benchmark: batched rlqlib.data.degrade vs the reference's per-image PIL / OpenCV / torchvision code, in one run.

Usage::

    .venv/bin/python bench/degrade.py                                     # batch 64, 384×192, CPU
    .venv/bin/python bench/degrade.py --batch 64 --size 384 192 --seconds 3
    .venv/bin/python bench/degrade.py --device cuda                       # adds the GPU's img/s

The *per-image reference* is the authors' code path (docs/spec.md §4), one image at a time on HWC uint8 arrays:
pixelation = PIL resize of the shorter side to r (BICUBIC) then PIL BILINEAR back; motion blur = a k×k line
kernel rotated with ``cv2.warpAffine`` and applied with ``cv2.filter2D``; out-of-focus = torchvision's
``gaussian_blur`` (a k×k 2-D kernel). The *batched* version is :func:`rlqlib.data.degrade.apply` on a (B, 3, H, W)
uint8 batch with the same per-image parameters (drawn once with ``sample_params``); the mixture row times
:func:`rlqlib.data.degrade.degrade` with the ``--mix`` dataset mix (LTCC: ⅓ each) against the per-image loop over
the same choices and parameters (replayed from the same seed and checked to reproduce its output exactly).

Both run in this process with the current thread count (``torch.set_num_threads`` and ``cv2.setNumThreads``;
Pillow is single-threaded; ``--threads 1`` compares one core each). Throughput is the best of repeated runs
for at least ``--seconds`` each (other jobs sharing the machine only slow runs down, so the best is the least
disturbed); img/CPU-s divides by the process's CPU time instead, which tells how efficiently each uses a core
whatever the load. Fidelity is max and mean |Δ| in grey levels between the batched and per-image outputs. Images are SynthCC-like: a flat-coloured
figure with hard edges on a textured gradient, plus mild sensor noise (``--unique`` distinct ones, tiled).

Targets (issue / performance anchors §2): mixture ≥ 2× the per-image mixture on CPU, within ±1 level;
≥ 20,000 img/s on a GPU. A JSON line with every number ends the output.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import reference_degrade as ref  # noqa: E402
from rlqlib.data import degrade  # noqa: E402


def per_image_jobs(artifact: str, params: dict[str, torch.Tensor]) -> list[tuple[Callable, tuple]]:
    """(function, arguments) per image: the reference's per-image code (:mod:`bench.reference_degrade`)."""
    return [(ref.REFERENCE[artifact], a) for a in ref.per_image_args(artifact, params)]


# ------------------------------------------------------------------------------------------------ timing


def measure(fn: Callable[[], object], n: int, seconds: float, sync: Callable[[], None] = lambda: None) -> dict:
    """Best and median img/s over repeated runs (at least 3, ``seconds`` in all) and img per CPU-second."""
    fn()
    sync()  # warm-up (allocator, lazy imports, kernels)
    times, cpu, total = [], 0.0, 0.0
    while len(times) < 3 or (total < seconds and len(times) < 200):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
        cpu += time.process_time() - c0
        total += times[-1]
    return {"best": n / min(times), "median": n / statistics.median(times), "per_cpu_s": n * len(times) / cpu,
            "runs": len(times)}


def diff(batched: torch.Tensor, refs: list[np.ndarray]) -> tuple[int, float]:
    """max and mean |Δ| in grey levels between a (B, 3, H, W) uint8 batch and per-image HWC outputs."""
    d = np.abs(batched.cpu().permute(0, 2, 3, 1).numpy().astype(np.int16) - np.stack(refs).astype(np.int16))
    return int(d.max()), float(d.mean())


def replay(b: int, mix: str, seed: int, device: torch.device) -> tuple[list[str], dict[str, dict]]:
    """The artifact choices and parameters ``degrade.degrade`` draws from this seed (same order of draws)."""
    g = torch.Generator(device=device).manual_seed(seed)
    codes = degrade.choose_artifacts(b, mix, g)
    names = [degrade.ALL_ARTIFACTS[c] for c in codes.tolist()]
    params = {}
    for name in degrade.ALL_ARTIFACTS:
        idx = (codes == degrade.ALL_ARTIFACTS.index(name)).nonzero().flatten()
        if idx.numel():
            drawn = degrade.sample_params(name, idx.numel(), g)
            params[name] = {"idx": idx.cpu(), **{k: v.cpu() for k, v in drawn.items()}}
    return names, params


def mixture_jobs(params: dict[str, dict], b: int) -> list[tuple[Callable, tuple]]:
    """The per-image reference calls of a replayed mixture, in batch order."""
    jobs: list = [None] * b
    for name, p in params.items():
        for i, job in zip(p["idx"].tolist(), per_image_jobs(name, p)):
            jobs[i] = job
    return jobs


def bench_artifact(name: str, arrays: list[np.ndarray], x: torch.Tensor, xd: torch.Tensor, args) -> dict:
    """Per-image reference vs batched apply() for one artifact on the whole batch (same parameters)."""
    b = len(arrays)
    g = torch.Generator().manual_seed(args.seed + degrade.ARTIFACTS.index(name))
    params = degrade.sample_params(name, b, g)
    jobs = per_image_jobs(name, params)
    refs = [fn(a, *p) for a, (fn, p) in zip(arrays, jobs)]
    row = {"ref": measure(lambda: [fn(a, *p) for a, (fn, p) in zip(arrays, jobs)], b, args.seconds),
           "batched": measure(lambda: degrade.apply(x, name, params), b, args.seconds)}
    row["max_diff"], row["mean_diff"] = diff(degrade.apply(x, name, params), refs)
    if xd.device.type != "cpu":
        pd = {k: v.to(xd.device) for k, v in params.items()}
        row["device"] = measure(lambda: degrade.apply(xd, name, pd), b, args.seconds, torch.cuda.synchronize)
        row["device_max_diff"], row["device_mean_diff"] = diff(degrade.apply(xd, name, pd), refs)
    return row


def bench_mixture(arrays: list[np.ndarray], x: torch.Tensor, xd: torch.Tensor, args) -> dict:
    """Per-image loop over degrade()'s own choices and parameters vs degrade() itself."""
    b = len(arrays)
    names, params = replay(b, args.mix, args.seed, torch.device("cpu"))
    jobs = mixture_jobs(params, b)
    y, info = degrade.degrade(x, torch.Generator().manual_seed(args.seed), mix=args.mix)
    exact = [degrade.ALL_ARTIFACTS[c] for c in info["artifact"].tolist()] == names
    for name, p in params.items():  # the replay reproduces degrade()'s output, so the fidelity is degrade()'s
        exact &= torch.equal(y[p["idx"]], degrade.apply(x[p["idx"]], name, p))
    row = {"ref": measure(lambda: [fn(a, *p) for a, (fn, p) in zip(arrays, jobs)], b, args.seconds),
           "batched": measure(lambda: degrade.degrade(x, torch.Generator().manual_seed(args.seed), mix=args.mix),
                              b, args.seconds),
           "replay_exact": bool(exact), "counts": {n: names.count(n) for n in degrade.ARTIFACTS}}
    row["max_diff"], row["mean_diff"] = diff(y, [fn(a, *p) for a, (fn, p) in zip(arrays, jobs)])
    if xd.device.type != "cpu":  # a CUDA generator draws other numbers: replay on the device
        def run():
            return degrade.degrade(xd, torch.Generator(device=xd.device).manual_seed(args.seed), mix=args.mix)[0]

        row["device"] = measure(run, b, args.seconds, torch.cuda.synchronize)
        jobs_d = mixture_jobs(replay(b, args.mix, args.seed, xd.device)[1], b)
        refs_d = [fn(a, *p) for a, (fn, p) in zip(arrays, jobs_d)]
        row["device_max_diff"], row["device_mean_diff"] = diff(run(), refs_d)
    return row


def report(rows: dict[str, dict], args, load0: float, gpu: str | None) -> None:
    h, w = args.size
    print(f"degrade bench: batch {args.batch}, {h}×{w} uint8, {args.threads} thread(s) (torch and cv2), "
          f"load average {load0:.1f} → {os.getloadavg()[0]:.1f}" + (f", GPU: {gpu}" if gpu else ""))
    head = (f"{'artifact':<20}{'per-image img/s':>16}{'batched img/s':>15}{'speed-up':>10}{'img/CPU-s ref':>15}"
            f"{'img/CPU-s ours':>16}{'max|Δ|':>8}{'mean|Δ|':>10}")
    head += f"{'GPU img/s':>12}{'GPU max|Δ|':>12}" if gpu else ""
    cores = os.cpu_count() or 1
    if max(load0, os.getloadavg()[0]) > 0.5 * cores:
        print(f"warning: load average above {0.5 * cores:.1f} on {cores} cores: wall-clock figures are unreliable "
              "(img/CPU-s less so; OMP_WAIT_POLICY=PASSIVE avoids spin-wait collapse on a shared machine)")
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        r["speedup"] = r["batched"]["best"] / r["ref"]["best"]
        r["cpu_efficiency"] = r["batched"]["per_cpu_s"] / r["ref"]["per_cpu_s"]
        line = (f"{name:<20}{r['ref']['best']:>16.0f}{r['batched']['best']:>15.0f}{r['speedup']:>9.2f}×"
                f"{r['ref']['per_cpu_s']:>15.0f}{r['batched']['per_cpu_s']:>16.0f}{r['max_diff']:>8d}"
                f"{r['mean_diff']:>10.4f}")
        print(line + (f"{r['device']['best']:>12.0f}{r['device_max_diff']:>12d}" if gpu else ""))
    mix = rows[f"mixture ({args.mix})"]
    print(f"mixture: {mix['speedup']:.2f}× the per-image loop (target ≥ 2×), max |Δ| {mix['max_diff']} "
          f"(target ≤ 1), choices {mix['counts']}, replay exact: {mix['replay_exact']}"
          + (f"; GPU {mix['device']['best']:.0f} img/s (target ≥ 20,000)" if gpu else ""))
    print(json.dumps({"bench": "degrade", "batch": args.batch, "size": [h, w], "threads": args.threads,
                      "device": args.device, "gpu": gpu, "mix": args.mix, "seconds": args.seconds,
                      "load": [load0, os.getloadavg()[0]], "torch": torch.__version__, "cv2": cv2.__version__,
                      "rows": rows}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, nargs=2, default=(384, 192), metavar=("H", "W"))
    ap.add_argument("--seconds", type=float, default=2.0, help="minimum timing budget per measurement")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda to add the GPU's throughput")
    ap.add_argument("--mix", default="ltcc", choices=sorted(degrade.MIXES))
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--unique", type=int, default=16, help="distinct images, tiled to the batch")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.device != "cpu" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: no CUDA device here; run without --device")
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    load0 = os.getloadavg()[0]
    h, w = args.size
    uniq = [ref.scene(args.seed * 1000 + i, h, w) for i in range(min(args.unique, args.batch))]
    arrays = [uniq[i % len(uniq)] for i in range(args.batch)]
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # (B, 3, H, W) uint8
    xd = x.to(args.device)
    rows = {name: bench_artifact(name, arrays, x, xd, args) for name in degrade.ARTIFACTS}
    rows[f"mixture ({args.mix})"] = bench_mixture(arrays, x, xd, args)
    report(rows, args, load0, torch.cuda.get_device_name(xd.device) if xd.device.type == "cuda" else None)


if __name__ == "__main__":
    main()
