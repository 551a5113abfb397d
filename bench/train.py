"""Training-step throughput (images/s) per preset, variant and device, on synthetic batches.

    .venv/bin/python bench/train.py --preset cpu                       # CPU: CAL, BM, RLQ (CAP and TAD steps)
    .venv/bin/python bench/train.py --preset paper --device cuda       # GPU: ResNet-50 384x192, fp32 vs bf16+CL
    .venv/bin/python bench/train.py --preset cpu --threads 1 --convs plain small-map   # the small-map weight gradient

Each configuration builds the run's modules (model, heads, optimisers, frozen teacher) exactly as
:class:`rlqlib.engine.train.Trainer` does, feeds random uint8 images with valid labels (so no dataset is needed),
runs ``--warmup`` steps and times ``--steps`` more. A CAP step forwards M = P·K images (2·P·K with the cloth
replica); a TAD step forwards 2B (HQ + LQ) through the student plus B through the teacher. Batch making
(sampling, recolouring, augmentation: :class:`rlqlib.data.batches.TrainBatches` over random images and masks) is timed
separately (``batch_s``). ``--set KEY=JSON`` applies config overrides to every variant (e.g.
``--set data.cloth_aug=false`` for a BM step without the recoloured replica; ``--set schedule.ema_decay=0`` for
steps without the weight average that the cpu preset updates after each of them). Prints one JSON line per
configuration: s/step and images/s (images = what the student forwards) and the 1-minute load average before
the timing: on this 2-core machine two processes with 2 threads each slow every step by 5–60× (OpenMP threads
waiting on a busy core), so a load above ~0.5 means the figures are not the machine's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time

import torch

from rlqlib.engine import config as C
from rlqlib.engine import presets as Pr
from rlqlib.engine.ema import WeightAverage
from rlqlib.data.batches import TrainBatches
from rlqlib.data.recolour import COLOURS
from rlqlib.data.sampler import PKSampler
from rlqlib.methods.base import Placement
from rlqlib.methods.conv_grad import use_small_map_convs
from rlqlib.methods.model_config import ModelConfig
from rlqlib.methods.optim import adam
from rlqlib.methods.rlq import model as M
from rlqlib.methods.rlq import steps as S
from rlqlib.data.transforms import train_augment


def build(cfg: C.ExperimentConfig, num_ids: int, device: torch.device, convs: str = "small-map") -> S.StepContext:
    clothes_orig = 4 * num_ids
    num_clothes = clothes_orig + (81 * num_ids if cfg.data.cloth_aug else 0)
    mcfg = ModelConfig(**{**C.to_dict(cfg)["model"], "num_ids": num_ids, "num_clothes": num_clothes,
                          "num_pose_classes": cfg.data.pose_k + 1})
    model, heads = M.build_model(mcfg, 0), M.build_heads(mcfg, 1)
    use_small_map_convs(model, enabled=convs == "small-map")  # build_trunk switched them on
    student = S.Student(model, heads.cal_classifier).to(device)
    cc = heads.clothes_classifier.to(device)
    if cfg.runtime.channels_last:
        student.to(memory_format=torch.channels_last)
    teacher = None
    if cfg.tad.enabled:
        teacher = M.make_teacher(M.build_model(ModelConfig(**{**C.to_dict(cfg)["model"], "variant": "bm"}), 2)
                                 .to(device))
    p2c = torch.zeros(num_ids, num_clothes, dtype=torch.bool, device=device)
    p2c[torch.arange(num_ids), torch.arange(num_ids)] = True
    if cfg.data.cloth_aug:
        for i in range(num_ids):
            p2c[i, clothes_orig + 81 * i: clothes_orig + 81 * (i + 1)] = True
    s = cfg.schedule
    return S.StepContext(
        student=student, clothes_classifier=cc, teacher=teacher,
        opt=adam(student.parameters(), lr=s.lr, weight_decay=s.weight_decay),
        opt_cc=adam(cc.parameters(), lr=s.lr, weight_decay=s.weight_decay),
        scaler=torch.amp.GradScaler(device.type, enabled=cfg.runtime.amp == "fp16"),
        scaler_cc=torch.amp.GradScaler(device.type, enabled=cfg.runtime.amp == "fp16"),
        loss_cfg=cfg.losses, weights=dict(cfg.weights), terms=tuple(cfg.terms), pid2clothes=p2c,
        place=Placement(device, cfg.runtime.amp, cfg.runtime.channels_last), tad=cfg.tad, mix="ltcc",
        cos_from=model.disentangle_from or ("f_bot",))


def cap_batch(cfg: C.ExperimentConfig, num_ids: int, g: torch.Generator, device: torch.device) -> dict:
    p, k = cfg.data.p, cfg.data.k
    m = p * k * (2 if cfg.data.cloth_aug else 1)
    h, w = cfg.data.image_size
    x = torch.randint(0, 256, (m, 3, h, w), dtype=torch.uint8, generator=g, device=g.device).to(device)
    pids = (torch.arange(m, device=device) // (m // p)) % num_ids
    return {"images": train_augment(x, g), "pids": pids, "clothes_ids": pids.clone(),
            "gender": pids % 2, "pose": pids % (cfg.data.pose_k + 1), "index": torch.arange(m, device=device)}


def batch_seconds(cfg: C.ExperimentConfig, num_ids: int, device: torch.device, n: int) -> float:
    """Seconds per batch of :class:`rlqlib.data.batches.TrainBatches` (24 random images per identity, random masks)."""
    per_id = 24
    h, w = cfg.data.image_size
    g = torch.Generator(device=device)
    g.manual_seed(1)
    cpu = torch.Generator()
    cpu.manual_seed(2)
    images = torch.randint(0, 256, (num_ids * per_id, 3, h, w), dtype=torch.uint8, generator=cpu)
    pids = torch.arange(num_ids).repeat_interleave(per_id).numpy()
    clothes = pids * 4 + (torch.arange(num_ids * per_id).numpy() % 4)
    recolour = {}
    if cfg.data.cloth_aug:
        rows = torch.arange(h).view(1, 1, h, 1).expand(len(pids), 1, h, w)
        recolour = dict(recolour=True, shirt_masks=(rows < h // 2).to(device), pant_masks=(rows >= h // 2).to(device),
                        num_orig_clothes=4 * num_ids, colours=COLOURS)
    sampler = PKSampler(pids, cfg.data.p, cfg.data.k, 0, 0, 1)
    batches = TrainBatches(images.to(device), pids, clothes, sampler, g, device, **recolour)
    it = iter(batches)
    next(it)
    t0 = time.perf_counter()
    for _ in range(n):
        next(it)
    return (time.perf_counter() - t0) / n


def time_steps(fn, warmup: int, steps: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--variants", nargs="+", default=["cal", "bm", "rlq"])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--num-ids", type=int, default=136)
    ap.add_argument("--precisions", nargs="+", default=None,
                    help="amp:channels_last pairs, e.g. none:0 bf16:1 (default: the preset's, plus fp32 on cuda)")
    ap.add_argument("--convs", nargs="+", default=["small-map"], choices=["small-map", "plain"],
                    help="3x3 convolutions as the library builds them (small-map: matmul weight gradient on small "
                         "maps in CPU bf16 training) and/or plain oneDNN ones (the baseline), e.g. --convs plain small-map")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=JSON",
                    help="config override for every variant, e.g. data.cloth_aug=false (repeatable)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    overrides = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: use KEY=JSON, e.g. --set data.cloth_aug=false")
        overrides[key] = json.loads(value)
    base = Pr.make(args.preset, "bm")
    precisions = args.precisions or ([f"{base.runtime.amp}:{int(base.runtime.channels_last)}"] +
                                     (["none:0", "bf16:1"] if device.type == "cuda" else []))
    for prec in dict.fromkeys(precisions):
        amp, cl = prec.split(":")
        for variant, convs in ((v, c) for v in args.variants for c in args.convs):
            cfg = Pr.make(args.preset, variant, device=args.device, amp=amp,
                          **{"runtime.channels_last": bool(int(cl)), **overrides})
            ctx = build(cfg, args.num_ids, device, convs)
            g = torch.Generator(device=device)
            g.manual_seed(0)
            batch = cap_batch(cfg, args.num_ids, g, device)
            rec = {"preset": args.preset, "device": args.device, "variant": variant, "convs": convs, "amp": amp,
                   "channels_last": bool(int(cl)), "threads": torch.get_num_threads(),
                   "image_size": list(cfg.data.image_size), "backbone": cfg.model.backbone,
                   "cloth_aug": cfg.data.cloth_aug, "load_1min": round(os.getloadavg()[0], 2)}
            # schedule.ema_decay: every optimiser step over the model also updates the weight average, as in a run
            ema = WeightAverage(ctx.student.model, cfg.schedule.ema_decay) if cfg.schedule.ema_decay else None
            rec["ema_decay"] = cfg.schedule.ema_decay
            with ema.tracking(ctx.student.model) if ema is not None else contextlib.nullcontext():
                s = time_steps(lambda: S.cap_step(ctx, batch, cc_active=True, epoch=0, step=0, generator=g),
                               args.warmup, args.steps, device)
                n = batch["images"].shape[0]
                rec.update(cap_images=n, cap_s_per_step=round(s, 4), cap_images_per_s=round(n / s, 1))
                if cfg.tad.enabled:
                    b = cfg.data.p * cfg.data.k
                    h, w = cfg.data.image_size
                    hq = torch.randint(0, 256, (b, 3, h, w), dtype=torch.uint8, generator=g,
                                       device=g.device).to(device)
                    idx = torch.arange(b)
                    s = time_steps(lambda: S.tad_step(ctx, hq, idx, epoch=0, step=0, generator=g), args.warmup,
                                   args.steps, device)
                    rec.update(tad_images=2 * b, tad_s_per_step=round(s, 4), tad_images_per_s=round(2 * b / s, 1))
            rec["batch_s"] = round(batch_seconds(cfg, args.num_ids, device, args.steps), 4)
            print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
