"""The SynthCC camera pipeline: scenes, lighting, low-quality profiles, rendering and writing of image chunks.

Each image is drawn from its own ``np.random.Generator`` seeded by (seed, stream, group, image index); its
artifact parameters come from a ``torch.Generator`` seeded from that RNG. A chunk of images is degraded with
:mod:`rlqlib.data.degrade` as uint8 batches per artifact on the 2× canvas, lit, downsampled (antialiased bicubic),
noised and written. Chunks are fixed slices of the plan, so output never depends on the number of workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from rlqlib.data import degrade
from rlqlib.synthcc.body import (POSE_FAMILIES, Body, Outfit, Pose, pick, sample_family_yaw, sample_outfit, sample_pose,
                               view_of)
from rlqlib.synthcc.draw import BG, BOTTOM, TOP_LABELS, draw_person, layout

if TYPE_CHECKING:
    from rlqlib.synthcc.config import SynthConfig

PNG_LEVEL = 3  # zlib level: 2.5× faster than Pillow's default 6 for ~10 % larger files
# seed streams: SeedSequence([seed, stream, *keys])
ID_STREAM, OUTFIT_STREAM, CAMERA_STREAM, PLAN_STREAM, IMAGE_STREAM = 1, 2, 3, 4, 5
GROUPS = {"target": 0, "external": 1, "external_ntu": 2, "pretrain": 3}  # group → its seed key


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """The generator of one named stream, e.g. ``rng_for(seed, IMAGE_STREAM, group, index)``."""
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


@dataclass(frozen=True)
class Camera:
    """A view of the world: background scene, lighting, zoom and quality profile."""

    scene: tuple[int, int, int]  # seed material of the background
    brightness: float
    cast: tuple[float, float, float]
    zoom: float  # multiplies the person's height on the canvas
    shift: float  # mean horizontal offset of the person (fraction of the width)
    artifact: str  # dominant artifact of an LQ camera, or "none"


@dataclass(frozen=True)
class ImageSpec:
    """Everything a worker needs to render one image (the rest comes from the image's own RNG)."""

    folder: str  # relative output folder, e.g. "train" or "external/query"
    name: str
    group: str  # target | external | external_ntu | pretrain
    index: int  # image index within its group (seeds the image RNG)
    pid: int
    camid: int
    outfit_id: int  # pool index, or -1 for a fresh outfit drawn per image / per NTU session
    clothes_key: str
    body: Body
    outfit: Outfit | None  # None: draw a fresh one from the image RNG
    family: str
    yaw: float
    phase: float
    families: tuple[str, ...] = field(default=POSE_FAMILIES)  # what a resampled pose may be
    mask: bool = False


def make_cameras(cfg: SynthConfig, seed: int) -> dict[str, list[Camera]]:
    """Target cameras (with their LQ profiles), external scenes, the single NTU-like camera and the pretraining
    group's scenes (none without that group)."""
    lq = dict(cfg.lq_cameras)

    def cam(group: int, k: int, artifact: str = "none", dim: float = 1.0) -> Camera:
        r = rng_for(seed, CAMERA_STREAM, group, k)
        return Camera(scene=(seed, group, k), brightness=float(r.uniform(0.8, 1.12) * dim),
                      cast=tuple(float(v) for v in r.uniform(0.9, 1.1, 3)), zoom=float(r.uniform(0.95, 1.04)),
                      shift=float(r.uniform(-0.04, 0.04)), artifact=artifact)

    return {"target": [cam(0, k, lq.get(k, "none"), 0.9 if k in lq else 1.0) for k in range(cfg.cameras)],
            "external": [cam(1, k) for k in range(cfg.external_scenes)], "external_ntu": [cam(2, 0)],
            "pretrain": [cam(GROUPS["pretrain"], k) for k in range(cfg.pretrain_scenes if cfg.pretrain_ids else 0)]}


_BACKGROUNDS: dict[tuple, np.ndarray] = {}  # per-process cache


def _background(scene: tuple[int, int, int], hw: tuple[int, int], ntu: bool) -> np.ndarray:
    """A procedural scene (H + 2·pad, W + 2·pad, 3) uint8: wall with texture and objects above a floor."""
    key = (scene, hw, ntu)
    if key in _BACKGROUNDS:
        return _BACKGROUNDS[key]
    r = rng_for(*scene, 99)
    h, w = hw
    pad = w // 8
    H, W = h + 2 * pad, w + 2 * pad
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    horizon = r.uniform(0.55, 0.8) * H
    wall0 = r.uniform(75, 200) + r.normal(0, 16, 3)  # muted: a grey level plus a mild tint
    wall1 = wall0 * r.uniform(0.7, 1.1) + r.normal(0, 8, 3)
    t = (y / H)[..., None]
    img = wall0 * (1 - t) + wall1 * t  # (H, W, 3)
    kind = "plain" if ntu else ["plain", "bricks", "panels", "tiles", "windows"][int(r.integers(5))]
    s = h / 128.0
    if kind == "bricks":
        bh, bw = 8 * s * r.uniform(0.8, 1.3), 20 * s * r.uniform(0.8, 1.3)
        row = np.floor(y / bh)
        mortar = ((y % bh) < 1.2 * s) | (((x + (row % 2) * bw / 2) % bw) < 1.2 * s)
        img[mortar] *= 0.75
    elif kind == "panels":
        img[(x % (30 * s * r.uniform(0.7, 1.5))) < 2 * s] *= 0.8
    elif kind == "tiles":
        p = 16 * s * r.uniform(0.7, 1.4)
        img[((np.floor(x / p) + np.floor(y / p)) % 2) == 1] *= 0.9
    elif kind == "windows":
        for _ in range(int(r.integers(1, 4))):
            x0, y0 = r.uniform(0, W), r.uniform(0, horizon * 0.6)
            sel = (x > x0) & (x < x0 + r.uniform(15, 40) * s) & (y > y0) & (y < y0 + r.uniform(20, 50) * s)
            img[sel] = r.uniform(160, 230) + r.normal(0, 10, 3)
    for _ in range(0 if ntu else int(r.integers(0, 3))):  # pillars, doors, posters
        x0, wd = r.uniform(0, W), r.uniform(8, 40) * s
        y0 = r.uniform(0, horizon * 0.7)
        img[(x > x0) & (x < x0 + wd) & (y > y0) & (y < horizon)] = r.uniform(40, 210) + r.normal(0, 25, 3)
    floor0 = r.uniform(55, 175) + r.normal(0, 12, 3)
    fl = y >= horizon
    depth = ((y - horizon) / max(1.0, H - horizon))[..., None]
    img = np.where(fl[..., None], floor0 * (0.85 + 0.3 * depth), img)
    if not ntu and r.random() < 0.6:  # floor lines, denser toward the horizon
        lines = fl & ((np.sqrt(np.maximum(y - horizon, 0)) * 2.5 / math.sqrt(s)) % 1.0 < 0.12)
        img[lines] *= 0.85
    img += r.normal(0, 3, (H, W, 1))  # surface grain
    out = np.clip(img, 0, 255).astype(np.uint8)
    _BACKGROUNDS[key] = out
    return out


def _shadow(canvas: np.ndarray, cx: float, gy: float, rx: float, ry: float) -> None:
    """Darken a soft ellipse on the floor under the feet (in place)."""
    h, w, _ = canvas.shape
    y0, y1 = max(0, int(gy - ry)), min(h, int(gy + ry) + 1)
    x0, x1 = max(0, int(cx - rx)), min(w, int(cx + rx) + 1)
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    d = ((xx - cx) / rx) ** 2 + ((yy - gy) / ry) ** 2
    f = 1 - 0.35 * np.clip(1 - d, 0, 1)[..., None]
    canvas[y0:y1, x0:x1] = (canvas[y0:y1, x0:x1] * f).astype(np.uint8)


class _Drawn(NamedTuple):
    """One image drawn on the 2× canvas, with what the batched steps of its chunk still need."""

    canvas: np.ndarray  # (2H, 2W, 3) uint8, unlit
    labels: np.ndarray  # (2H, 2W) part labels
    keypoints: np.ndarray  # (17, 3) canvas x, y, score
    artifact: str  # "none" or one of degrade.ARTIFACTS
    severity: float
    torch_seed: int  # seeds the artifact's parameter draw
    pose: Pose
    light: np.ndarray  # (3,) per-channel gain: camera brightness and colour cast
    noise: np.ndarray  # (3, H, W) sensor noise at the stored resolution


def _render_one(spec: ImageSpec, cfg: SynthConfig, seed: int, cams: dict[str, list[Camera]]) -> _Drawn:
    """Choose the image's artifact, then draw the person on the camera's background (everything from its RNG)."""
    rng = rng_for(seed, IMAGE_STREAM, GROUPS[spec.group], spec.index)
    cam = cams[spec.group][spec.camid]
    u = rng.random()
    if cam.artifact != "none" and u < cfg.lq_rate:
        artifact, sev = cam.artifact, rng.uniform(*cfg.lq_severity)
    elif cam.artifact != "none" and u < cfg.lq_rate + cfg.lq_other_rate:
        artifact, sev = pick(rng, [a for a in degrade.ARTIFACTS if a != cam.artifact]), rng.uniform(*cfg.mild_severity)
    elif spec.group == "target" and cam.artifact == "none" and u < cfg.hq_artifact_rate:
        artifact, sev = pick(rng, degrade.ARTIFACTS), rng.uniform(*cfg.mild_severity)
    else:
        artifact, sev = "none", 0.0
    tseed = int(rng.integers(2**62))
    h, w = cfg.image_size[0] * 2, cfg.image_size[1] * 2
    bg = _background(cam.scene, (h, w), spec.group == "external_ntu")
    ox, oy = rng.integers(0, bg.shape[1] - w + 1), rng.integers(0, bg.shape[0] - h + 1)
    canvas = bg[oy:oy + h, ox:ox + w].copy()
    family, yaw, phase = spec.family, spec.yaw + float(rng.normal(0, 5)), spec.phase
    if spec.group == "target" and rng.random() < 0.25:  # the person changes what they do within a tracklet
        family, yaw = sample_family_yaw(rng, spec.families)
    outfit = spec.outfit if spec.outfit is not None else sample_outfit(rng, not spec.body.gender)
    pose = sample_pose(family, yaw, spec.body, rng, phase)
    fill = spec.body.height * cam.zoom * rng.uniform(0.96, 1.04)
    scale, cx, gy = layout(spec.body, pose, (h, w), fill, cam.shift + float(rng.uniform(-0.03, 0.03)), 0.03)
    _shadow(canvas, w / 2 + (cx - w / 2) * 0.9, gy, 0.2 * scale, 0.035 * scale)
    rgb, labels, kp = draw_person(canvas, spec.body, outfit, pose, scale, cx, gy)
    light = np.asarray(cam.cast, np.float32) * np.float32(cam.brightness * rng.uniform(0.93, 1.07))
    noise = 2.0 * rng.standard_normal((3, *cfg.image_size), dtype=np.float32)  # sensor noise, stored resolution
    return _Drawn(rgb, labels, kp, artifact, float(sev), tseed, pose, light, noise)


def _degrade_group(batch: torch.Tensor, artifact: str, sev: list[float], tseeds: list[int]):
    """Degrade a (B, 3, H, W) uint8 batch with per-image parameters drawn from per-image generators."""
    per = [degrade.sample_params(artifact, 1, torch.Generator().manual_seed(t), torch.tensor([s], dtype=torch.float32))
           for s, t in zip(sev, tseeds)]
    params = {k: torch.cat([p[k] for p in per]) for k in per[0]}
    return degrade.apply(batch, artifact, params), params, degrade.strength(artifact, params)


def _param_text(params: dict[str, torch.Tensor], i: int) -> str:
    """The drawn parameters of image i as ``k=v;k=v`` (sorted keys; floats to 3 decimals)."""
    vals = []
    for k in sorted(params):
        v = params[k][i].item()
        vals.append(f"{k}={int(v)}" if float(v).is_integer() else f"{k}={round(float(v), 3)}")
    return ";".join(vals)


def render_chunk(job: tuple[list[ImageSpec], SynthConfig, int, dict[str, list[Camera]], Path]) -> list[dict]:
    """Render, degrade, downsample and write a fixed chunk of images.

    Args:
        job: (specs, config, seed, cameras by group, output root); one tuple so that it maps over a pool.

    Returns:
        One record per image: its metadata columns and its AlphaPose-format keypoint entry.
    """
    specs, cfg, seed, cams, out = job
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # same arithmetic in every process
    try:
        drawn = [_render_one(s, cfg, seed, cams) for s in specs]
        canvas = torch.from_numpy(np.stack([d.canvas for d in drawn])).permute(0, 3, 1, 2)  # (B, 3, 2H, 2W)
        light = torch.from_numpy(np.stack([d.light for d in drawn]))[:, :, None, None]  # (B, 3, 1, 1)
        canvas = (canvas.float() * light).round_().clamp_(0, 255).to(torch.uint8)  # camera lighting / colour cast
        info = [("none", "", 0.0)] * len(specs)
        for art in degrade.ARTIFACTS:
            idx = [i for i, d in enumerate(drawn) if d.artifact == art]
            if not idx:
                continue
            y, params, strength = _degrade_group(canvas[idx], art, [drawn[i].severity for i in idx],
                                                 [drawn[i].torch_seed for i in idx])
            canvas[idx] = y
            for n, i in enumerate(idx):
                info[i] = (art, _param_text(params, n), round(float(strength[n]), 4))
        small = F.interpolate(canvas, size=cfg.image_size, mode="bicubic", antialias=True)  # (B, 3, H, W) uint8
        noise = torch.from_numpy(np.stack([d.noise for d in drawn]))  # (B, 3, H, W)
        small = (small.float() + noise).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    finally:
        torch.set_num_threads(threads)
    h, w = cfg.image_size
    records = []
    for spec, d, arr, (art, ptxt, strength) in zip(specs, drawn, small, info):
        labels, kp = d.labels, d.keypoints
        Image.fromarray(arr).save(out / spec.folder / spec.name, format="PNG", compress_level=PNG_LEVEL)
        if spec.mask:
            stem = spec.name[:-4]
            for suffix, sel in (("shirt", np.isin(labels, TOP_LABELS)), ("pant", labels == BOTTOM)):
                m = sel.reshape(h, 2, w, 2).sum(axis=(1, 3), dtype=np.uint8) >= 2  # (H, W) ≥ half of each 2×2
                Image.fromarray(np.repeat((m * 255).astype(np.uint8)[..., None], 3, axis=2)).save(
                    out / "masks" / "train" / f"{stem}_{suffix}.png", format="PNG", compress_level=PNG_LEVEL)
        ys, xs = np.nonzero(labels != BG)
        x0, y0, x1, y1 = xs.min() / 2, ys.min() / 2, (xs.max() + 1) / 2, (ys.max() + 1) / 2
        kx = np.clip((kp[:, 0] + 0.5) / 2 - 0.5, 0, w - 1)
        ky = np.clip((kp[:, 1] + 0.5) / 2 - 0.5, 0, h - 1)
        flat = [round(float(v), 2) for trio in zip(kx, ky, kp[:, 2]) for v in trio]
        records.append({
            "folder": spec.folder, "image": spec.name, "pid": spec.pid, "camid": spec.camid,
            "outfit": spec.outfit_id, "clothes_key": spec.clothes_key, "gender": spec.body.gender,
            "pose_family": d.pose.family, "view": view_of(d.pose.yaw), "artifact": art, "artifact_param": ptxt,
            "artifact_strength": strength,
            "keypoints": {"image_id": spec.name, "category_id": 1, "keypoints": flat,
                          "score": round(float(kp[:, 2].mean()), 3),
                          "box": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]}})
    return records


def init_worker() -> None:
    """Pool initializer: one intra-op thread per worker process."""
    torch.set_num_threads(1)


def render_person(body: Body, outfit: Outfit, family: str = "front_stand", yaw: float = 0.0, phase: float = 0.0,
                  image_size: tuple[int, int] = (128, 64), seed: int = 0) -> Image.Image:
    """One person on a plain grey background at ``image_size`` (for figures and quick looks)."""
    rng = np.random.default_rng(seed)
    h, w = image_size[0] * 2, image_size[1] * 2
    pose = sample_pose(family, yaw, body, rng, phase)
    scale, cx, gy = layout(body, pose, (h, w), body.height, 0.0, 0.03)
    rgb, _, _ = draw_person(np.full((h, w, 3), 170, np.uint8), body, outfit, pose, scale, cx, gy)
    return Image.fromarray(rgb).resize((image_size[1], image_size[0]), Image.Resampling.BICUBIC, reducing_gap=None)
