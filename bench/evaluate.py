"""Benchmark: rlqlib.engine.evaluate against the reference evaluation pipeline, in one run, with agreement checks.

Usage::

    .venv/bin/python bench/evaluate.py                        # LTCC- and PRCC-scale
    .venv/bin/python bench/evaluate.py --scales last --last-queries 2000 --ref-last-queries 200

Synthetic clustered features (identity + outfit + camera centres + noise, L2-normalised, D = 4096 by default)
at three scales: LTCC (493 × 7,050, 75 ids, 12 cameras, 5 outfits per id), PRCC (3,543 × 3,384, 71 ids,
3 cameras, 3 outfits per id) and LaST-like (10,000 × 125,000, 5,806 ids, unique camid per image, clothes = pid,
general protocol only).

The *reference pipeline* re-implements the authors' evaluation (docs/spec.md §8; its cost is measured in bench/README.md): distances one
query at a time (``-(q_i @ g.T)``) into a (Q, G) float32 matrix, then per mode one full ``np.argsort`` (numpy's
default, unstable) and a per-query loop with ``np.isin`` (the original's ``np.in1d`` no longer exists in numpy
≥ 2.4, where it crashes). LTCC/PRCC run all three modes, each with its own argsort, as the reference's ``test()``.

Reported per scale (best of ``--repeats`` runs; run it twice when other jobs share the machine):

* end-to-end time (features → all metrics) and metric stage only (same float32 distance matrix in);
* CPU seconds of all threads (much less affected by other jobs than wall time) and the load average;
* peak memory growth: ``VmHWM`` (reset through ``/proc/self/clear_refs``) minus ``VmRSS`` before;
* agreement: ours vs the reference with a *stable* argsort on the same distance matrix (must be
  bit-identical), vs the verbatim unstable reference (full CMC identical? |ΔmAP|), and end to end
  (chunked GEMM vs per-query GEMV distances: |ΔmAP| ≤ 1e-6 required).

With ``--score-command`` each scale's features are also written to ``.npz`` files and scored both ways users do:
the library call :func:`rlqlib.engine.ranking.score_files` in this process (best of ``--repeats``) and the
``rlq score`` command in a fresh process (best of ``--repeats``, interpreter start-up and imports included); the
command imports no torch, so it should stay within 1.5× of the library call.

At LaST scale the reference is run on the first ``--ref-last-queries`` queries only (its distance matrix and
int64 argsort for 10,000 queries need ~15 GB) and its time is **extrapolated linearly** to 10,000 queries; ours
runs ``--last-queries`` queries end to end (default all 10,000; extrapolated the same way when fewer) and the
metric stage on the reference's queries (same distance matrix). Extrapolated figures are marked with ``~``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rlqlib.engine.evaluate import evaluate, evaluate_distmat  # noqa: E402
from rlqlib.engine.ranking import score_files  # noqa: E402

LAST_QUERIES = 10_000


@dataclass(frozen=True)
class Scale:
    name: str
    num_q: int
    num_g: int
    num_ids: int
    num_cams: int
    outfits: int
    protocols: tuple[str, ...]
    last_like: bool = False  # unique camid per image, clothes = pid
    nuisance: float = 2.0  # weight of the low-rank nuisance term of the synthetic features


SCALES = {
    "ltcc": Scale("ltcc", 493, 7_050, 75, 12, 5, ("general", "sc", "cc")),
    "prcc": Scale("prcc", 3_543, 3_384, 71, 3, 3, ("general", "sc", "cc")),
    "last": Scale("last", LAST_QUERIES, 125_000, 5_806, 1, 1, ("general",), last_like=True, nuisance=0.95),
}


# ------------------------------------------------------------------------------------------------ memory, data


def _status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) * 1024
    return out


class PeakMemory:
    """Peak resident-memory growth (bytes) over a block: resets the high-water mark, reads it after."""

    def __enter__(self) -> PeakMemory:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        self.before = _status()["VmRSS"]
        return self

    def __exit__(self, *exc) -> None:
        self.peak = _status()["VmHWM"] - self.before


def make_data(scale: Scale, dim: int, seed: int) -> dict:
    """Clustered unit features and labels; pids, cameras and outfits drawn uniformly.

    feature ∝ identity + outfit + 0.8·camera centre + w·(low-rank nuisance, 16 directions) + 0.3·isotropic
    noise, all centres unit vectors. w = 2: about 80 % general / 28 % CC top-1 at LTCC scale (CAL on LTCC:
    74 / 40); LaST (no outfit term, 16 camera "styles"), w = 0.95: about 86 % top-1, 22 % mAP (CAL: 74 / 29).
    """
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    ids = rng.permutation(scale.num_ids)
    g_pids = np.concatenate([ids, rng.integers(0, scale.num_ids, scale.num_g - scale.num_ids)])
    q_pids = rng.integers(0, scale.num_ids, scale.num_q)
    if scale.last_like:
        q_cams, g_cams = np.arange(scale.num_q), scale.num_q + np.arange(scale.num_g)
        q_clo, g_clo = q_pids.copy(), g_pids.copy()
        look_q, look_g = rng.integers(0, 16, scale.num_q), rng.integers(0, 16, scale.num_g)  # camera "style"
    else:
        q_cams, g_cams = rng.integers(0, scale.num_cams, scale.num_q), rng.integers(0, scale.num_cams, scale.num_g)
        q_clo = q_pids * scale.outfits + rng.integers(0, scale.outfits, scale.num_q)
        g_clo = g_pids * scale.outfits + rng.integers(0, scale.outfits, scale.num_g)
        look_q, look_g = q_cams, g_cams

    def unit(n):
        return torch.nn.functional.normalize(torch.randn(n, dim, generator=gen), dim=1)

    id_c, look_c, nuisance = unit(scale.num_ids), unit(16 if scale.last_like else scale.num_cams), unit(16)
    outfit_c = None if scale.last_like else unit(scale.num_ids * scale.outfits)

    def feats(pids, clothes, looks):
        out = torch.empty(len(pids), dim)
        for s in range(0, len(pids), 8192):
            sl = slice(s, s + 8192)
            n = len(pids[sl])
            f = id_c[torch.from_numpy(pids[sl])] + 0.8 * look_c[torch.from_numpy(looks[sl])]  # (n, D)
            f += scale.nuisance * (torch.randn(n, 16, generator=gen) / 4) @ nuisance + 0.3 * unit(n)
            if outfit_c is not None:
                f += outfit_c[torch.from_numpy(clothes[sl])]
            out[sl] = torch.nn.functional.normalize(f, dim=1)
        return out

    return {"qf": feats(q_pids, q_clo, look_q), "gf": feats(g_pids, g_clo, look_g),
            "labels": (q_pids, g_pids, q_cams, g_cams, q_clo, g_clo)}


# ------------------------------------------------------------------------------------------------ reference


def reference_distmat(qf: torch.Tensor, gf: torch.Tensor) -> np.ndarray:
    """The reference's distance loop: one (1, D) @ (D, G) product per query."""
    distmat = torch.zeros(qf.shape[0], gf.shape[0])
    for i in range(qf.shape[0]):
        distmat[i] = -torch.mm(qf[i:i + 1], gf.t())
    return distmat.numpy()


def _ap_cmc(order, good, junk):
    cmc = np.zeros(len(order))
    order = order[np.isin(order, junk, invert=True)]
    rows_good = np.argwhere(np.isin(order, good)).flatten()
    cmc[rows_good[0]:] = 1.0
    ap = 0
    for i in range(len(good)):
        ap = ap + (1.0 / len(good)) * ((i + 1) * 1.0 / (rows_good[i] + 1))
    return ap, cmc


def reference_metrics(distmat, labels, mode, kind="quicksort"):
    """The reference's ``evaluate`` (mode general) / ``evaluate_with_clothes`` (cc, sc), np.isin for np.in1d."""
    q_pids, g_pids, q_cams, g_cams, q_clo, g_clo = labels
    index = np.argsort(distmat, axis=1, kind=kind)
    cmc_sum, ap_sum, no_gt = np.zeros(len(g_pids)), 0, 0
    for i in range(distmat.shape[0]):
        same_id = np.argwhere(g_pids == q_pids[i])
        same_cam = np.argwhere(g_cams == q_cams[i])
        good = np.setdiff1d(same_id, same_cam, assume_unique=True)
        junk = np.intersect1d(same_id, same_cam)
        if mode != "general":
            same_clo = np.argwhere(g_clo == q_clo[i])
            if mode == "cc":
                good = np.setdiff1d(good, same_clo, assume_unique=True)
                junk = np.union1d(junk, np.intersect1d(same_id, same_clo))
            else:
                good = np.intersect1d(good, same_clo)
                junk = np.union1d(junk, np.setdiff1d(same_id, same_clo))
        if good.size == 0:
            no_gt += 1
            continue
        ap, cmc = _ap_cmc(index[i], good, junk)
        cmc_sum, ap_sum = cmc_sum + cmc, ap_sum + ap
    valid = distmat.shape[0] - no_gt
    return cmc_sum / valid, ap_sum / valid


# ------------------------------------------------------------------------------------------------ runs


@dataclass(frozen=True)
class Timing:
    wall: float  # best wall time over the repeats, s
    cpu: float  # CPU time of that run, all threads, s: hardly depends on other jobs sharing the machine
    peak: int  # peak resident-memory growth of the first run, bytes


def timed(fn, repeats: int = 1):
    """(result of the last run, :class:`Timing`)."""
    best, cpu, peak, out = float("inf"), 0.0, 0, None
    for i in range(repeats):
        with PeakMemory() as mem:
            start, start_cpu = time.perf_counter(), time.process_time()
            out = fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            wall, used = time.perf_counter() - start, time.process_time() - start_cpu
        if wall < best:
            best, cpu = wall, used
        peak = mem.peak if i == 0 else peak
    return out, Timing(best, cpu, peak)


def compare(ours: dict, ref: dict[str, tuple[np.ndarray, float]]) -> dict:
    """Full-CMC identity and max |ΔmAP| of ours (with ``cmc``) against reference (cmc, mAP) per mode."""
    cmc_same = all(np.array_equal(np.asarray(ours[m]["cmc"]), ref[m][0]) for m in ref)
    d_map = max(abs(ours[m]["mAP"] - ref[m][1]) for m in ref)
    return {"cmc_identical": bool(cmc_same), "max_abs_dmAP": float(d_map)}


def run_scale(scale: Scale, args: argparse.Namespace) -> dict:
    data = make_data(scale, args.dim, args.seed)
    qf, gf, labels = data["qf"], data["gf"], data["labels"]
    modes = scale.protocols
    n_ours = min(args.last_queries, scale.num_q) if scale.last_like else scale.num_q
    n_ref = min(args.ref_last_queries, scale.num_q) if scale.last_like else scale.num_q
    sub = lambda lab, n: (lab[0][:n], *lab[1:2], lab[2][:n], *lab[3:4], lab[4][:n], lab[5])  # noqa: E731
    ours_kw = dict(protocols=modes, chunk=args.chunk)
    dev = torch.device(args.device)
    qd, gd = qf.to(dev), gf.to(dev)  # ours runs on --device; the reference on the CPU, as in test.py's metrics

    # ours, end to end, on n_ours queries (timed first, on a quiet heap)
    r = 1 if scale.last_like else args.repeats  # LaST: one run of each
    e2e, t_e2e = timed(lambda: evaluate(qd[:n_ours], gd, *sub(labels, n_ours), return_cmc=True, **ours_kw), r)
    # reference, end to end, on n_ref queries
    lab_ref = sub(labels, n_ref)
    ref_dm, t_ref_dist = timed(lambda: reference_distmat(qf[:n_ref], gf), r)
    ref, t_ref_metric = timed(lambda: {m: reference_metrics(ref_dm, lab_ref, m) for m in modes}, r)
    # ours, metric stage only, same distance matrix
    ref_dm_dev = torch.from_numpy(ref_dm).to(dev)
    ours_dm, t_metric = timed(lambda: evaluate_distmat(ref_dm_dev, *lab_ref, return_cmc=True, **ours_kw), r)
    # agreement
    stable = {m: reference_metrics(ref_dm, lab_ref, m, kind="stable") for m in modes}
    ours_e2e_sub = e2e if n_ref == n_ours else evaluate(qd[:n_ref], gd, *lab_ref, return_cmc=True, **ours_kw)
    same_dm_stable = compare(ours_dm, stable)
    agree = {
        "same_distmat_vs_stable_ref": same_dm_stable,
        "bit_identical_to_stable_ref": same_dm_stable["cmc_identical"] and same_dm_stable["max_abs_dmAP"] == 0.0,
        "same_distmat_vs_verbatim_ref": compare(ours_dm, ref),
        "end_to_end_vs_verbatim_ref": compare(ours_e2e_sub, ref),
        "top1_end_to_end": {m: (ours_e2e_sub[m]["top1"], float(ref[m][0][0])) for m in modes},
    }
    xo = LAST_QUERIES / n_ours if scale.last_like else 1.0  # extrapolation factors
    xr = LAST_QUERIES / n_ref if scale.last_like else 1.0
    mb = 2**20
    return {
        "scale": scale.name, "num_q": scale.num_q, "num_g": scale.num_g, "dim": args.dim, "modes": list(modes),
        "ours_queries_run": n_ours, "ref_queries_run": n_ref, "threads": torch.get_num_threads(), "repeats": r,
        "chunk": args.chunk, "device": str(dev), "ours_extrapolated": xo != 1.0, "ref_extrapolated": xr != 1.0,
        "load_avg_1min": os.getloadavg()[0],
        "ours_e2e_s": t_e2e.wall * xo, "ours_e2e_peak_mb": t_e2e.peak / mb,
        "ours_metric_s": t_metric.wall * xr, "ours_metric_peak_mb": t_metric.peak / mb,
        "ref_dist_s": t_ref_dist.wall * xr, "ref_metric_s": t_ref_metric.wall * xr,
        "ref_e2e_s": (t_ref_dist.wall + t_ref_metric.wall) * xr,
        "ref_e2e_peak_mb": (t_ref_dist.peak + t_ref_metric.peak) / mb,  # the distance matrix is held for metrics
        "ref_e2e_peak_mb_full_analytic": scale.num_q * scale.num_g * (4 + 8) / mb,  # distmat + int64 argsort
        "cpu_s": {"ours_e2e": t_e2e.cpu * xo, "ours_metric": t_metric.cpu * xr, "ref_dist": t_ref_dist.cpu * xr,
                  "ref_metric": t_ref_metric.cpu * xr},
        "speedup_e2e": (t_ref_dist.wall + t_ref_metric.wall) * xr / (t_e2e.wall * xo),
        "speedup_metric": t_ref_metric.wall / t_metric.wall,
        "features_mb": (qf.numel() + gf.numel()) * 4 / mb,
        "top1": {m: e2e[m]["top1"] for m in modes}, "mAP": {m: e2e[m]["mAP"] for m in modes},
        "agreement": agree,
    }


def score_command(scale: Scale, args: argparse.Namespace) -> dict:
    """``rlq score`` (a fresh process) against the in-process :func:`score_files` on this scale's features, CC
    protocol where the scale has clothes labels (general otherwise); best of ``args.repeats`` each."""
    data = make_data(scale, args.dim, args.seed)
    q_pids, g_pids, q_cams, g_cams, q_clo, g_clo = data["labels"]
    protocol = "cc" if "cc" in scale.protocols else "general"
    rlq = Path(sys.executable).parent / "rlq"
    with tempfile.TemporaryDirectory() as tmp:
        q, g = Path(tmp) / "q.npz", Path(tmp) / "g.npz"
        np.savez(q, feats=data["qf"].numpy(), pids=q_pids, camids=q_cams, clothes_ids=q_clo)
        np.savez(g, feats=data["gf"].numpy(), pids=g_pids, camids=g_cams, clothes_ids=g_clo)
        score_files(q, g, protocol)  # warm the page cache for both
        res, t_lib = timed(lambda: score_files(q, g, protocol), args.repeats)
        cmd = [str(rlq), "score", "--query", str(q), "--gallery", str(g), "--protocol", protocol]
        best, out = float("inf"), None
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            best = min(best, time.perf_counter() - start)
    same = json.loads(out.stdout) == res
    return {"scale": scale.name, "protocol": protocol, "library_s": t_lib.wall, "command_s": best,
            "ratio": best / t_lib.wall, "same_result": same, "command": " ".join(cmd[:2]) + " ...",
            "load_avg_1min": os.getloadavg()[0]}


def report(r: dict) -> str:
    xo = "~" if r["ours_extrapolated"] else ""  # extrapolated figures
    x = "~" if r["ref_extrapolated"] else ""  # also ours on the metric stage, run on the reference's queries
    a = r["agreement"]
    lines = [
        f"## {r['scale']}: {r['num_q']} x {r['num_g']}, D={r['dim']}, modes {'/'.join(r['modes'])}, "
        f"ours on {r['device']}, {r['threads']} threads, best of {r['repeats']} (ours ran {r['ours_queries_run']} q, "
        f"reference {r['ref_queries_run']} q)",
        f"  end to end : ours {xo}{r['ours_e2e_s']:.2f} s (peak +{r['ours_e2e_peak_mb']:.0f} MB) | reference "
        f"{x}{r['ref_e2e_s']:.2f} s (distances {x}{r['ref_dist_s']:.2f} s + metrics {x}{r['ref_metric_s']:.2f} s, "
        f"peak +{r['ref_e2e_peak_mb']:.0f} MB; full size needs ~{r['ref_e2e_peak_mb_full_analytic']:.0f} MB) | "
        f"speed-up {r['speedup_e2e']:.1f}x",
        f"  metric only: ours {x}{r['ours_metric_s']:.3f} s (peak +{r['ours_metric_peak_mb']:.0f} MB) | reference "
        f"{x}{r['ref_metric_s']:.3f} s | speed-up {r['speedup_metric']:.1f}x",
        f"  CPU seconds (all threads): { {k: round(v, 2) for k, v in r['cpu_s'].items()} }; "
        f"load average {r['load_avg_1min']:.1f} on {os.cpu_count()} cores",
        f"  metrics    : top-1 { {m: round(v, 4) for m, v in r['top1'].items()} }, "
        f"mAP { {m: round(v, 4) for m, v in r['mAP'].items()} }; features {r['features_mb']:.0f} MB",
        f"  agreement  : bit-identical to stable-argsort reference on the same distmat: "
        f"{a['bit_identical_to_stable_ref']}; vs verbatim reference: {a['same_distmat_vs_verbatim_ref']}; "
        f"end to end: {a['end_to_end_vs_verbatim_ref']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scales", default="ltcc,prcc", help="comma-separated: ltcc, prcc, last")
    p.add_argument("--dim", type=int, default=4096)
    p.add_argument("--chunk", type=int, default=512)
    p.add_argument("--device", default="cpu", help="where ours runs (cpu, cuda); peak memory is host RSS")
    p.add_argument("--last-queries", type=int, default=LAST_QUERIES, help="LaST queries for ours (extrapolated)")
    p.add_argument("--ref-last-queries", type=int, default=200, help="LaST queries for the reference (extrapolated)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--repeats", type=int, default=3, help="timings are the best of this many runs (LaST: 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--score-command", action="store_true",
                   help="also time `rlq score` against the in-process score_files on each scale")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for name in args.scales.split(","):
        if name not in SCALES:
            p.error(f"unknown scale {name!r}; choose from {', '.join(SCALES)}")
        results.append(run_scale(SCALES[name], args))
        print(report(results[-1]), flush=True)
        if args.score_command:
            c = score_command(SCALES[name], args)
            results[-1]["score_command"] = c
            print(f"  rlq score  : command {c['command_s']:.2f} s vs library call {c['library_s']:.2f} s "
                  f"({c['ratio']:.2f}x, {c['protocol']}, same result: {c['same_result']}; load average "
                  f"{c['load_avg_1min']:.1f})", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    ok = all(r["agreement"]["bit_identical_to_stable_ref"]
             and r["agreement"]["end_to_end_vs_verbatim_ref"]["max_abs_dmAP"] <= 1e-6 for r in results)
    print("agreement:", "OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
