"""The SynthCC person model: identities, outfits, poses and the 3-D COCO-17 skeleton.

A person is three frozen records: :class:`Body` (an identity's biometrics and persistent cues, fixed for
life), :class:`Outfit` (clothes, shared across identities) and :class:`Pose` (joint angles and facing, per
image). :func:`skeleton` builds the 3-D joints in units of body height (y up, feet on the ground, z the way the
person faces) and :func:`project` views them from a yaw (0 = facing the camera, 180 = back, +90 = facing image
right). The samplers take an explicit ``np.random.Generator``. Painting is :mod:`rlqlib.synthcc.draw`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

RGB = tuple[int, int, int]
T = TypeVar("T")

COCO17 = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
          "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
          "right_knee", "left_ankle", "right_ankle")
NOSE, LEYE, LEAR, LSH, LEL, LWR, LHIP, LKNEE, LANK = 0, 1, 3, 5, 7, 9, 11, 13, 15  # right side = left + 1
NECK, HEAD, LTOE, LHAND, PELVIS = 17, 18, 19, 21, 23  # extra points (right toe/hand = +1)
N_POINTS = 24

POSE_FAMILIES = ("front_stand", "back_stand", "side_walk", "run", "arms_raised", "crouch")
FAMILY_WEIGHTS = (0.22, 0.18, 0.32, 0.1, 0.08, 0.1)  # how often each family starts a tracklet
HAIR_STYLES = ("bald", "buzz", "short", "medium", "long", "ponytail", "bun", "curly")
STYLE_WEIGHTS = {1: (0.08, 0.22, 0.38, 0.14, 0.05, 0.03, 0.02, 0.08),  # over HAIR_STYLES, by gender
                 0: (0.0, 0.03, 0.1, 0.2, 0.32, 0.15, 0.1, 0.1)}

SKIN_TONES = ((255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 140, 100), (168, 112, 74),
              (141, 85, 54), (110, 66, 40), (80, 50, 32))
HAIR_COLOURS = ((22, 18, 18), (60, 38, 24), (105, 68, 40), (150, 60, 30), (205, 170, 100), (235, 220, 180),
                (140, 140, 140), (230, 230, 225), (190, 45, 40), (50, 80, 170))
GARMENTS = ((235, 235, 235), (30, 30, 32), (128, 128, 128), (30, 45, 90), (50, 100, 190), (140, 180, 230),
            (190, 35, 40), (110, 25, 40), (40, 120, 60), (110, 120, 50), (230, 200, 50), (230, 120, 40),
            (230, 140, 170), (110, 60, 140), (215, 195, 160), (110, 75, 45))
BOTTOMS = ((55, 80, 130), (30, 30, 32), (100, 100, 105), (180, 160, 115), (30, 40, 75), (95, 65, 45),
           (225, 225, 220), (85, 95, 55), (40, 55, 100), (150, 40, 50))
SHOES = ((25, 25, 25), (235, 235, 235), (100, 65, 40), (120, 120, 120), (170, 40, 40), (40, 60, 140))
JACKETS = ((35, 35, 38), (30, 40, 70), (95, 65, 40), (110, 110, 110), (80, 90, 50), (200, 180, 145),
           (70, 100, 150))
BAGS = ((30, 30, 30), (120, 80, 45), (40, 60, 110), (150, 40, 40), (90, 110, 70), (200, 170, 60))


@dataclass(frozen=True)
class Body:
    """An identity's persistent appearance. Lengths are fractions of the standing height."""

    gender: int  # 1 male, 0 female
    height: float  # standing height as a fraction of the canvas height (before camera jitter)
    shoulder: float  # shoulder width
    hip: float  # hip width
    depth: float  # torso depth / torso width (how wide the torso looks from the side)
    arm: float  # upper-arm thickness
    leg: float  # thigh thickness
    head: float  # head half-height
    leg_len: float  # hip-joint height
    skin: RGB
    hair: RGB
    hair_style: str  # one of HAIR_STYLES
    glasses: str  # none | clear | sun
    beard: bool
    bag: str  # none | backpack | shoulder
    bag_color: RGB
    tilt: float  # shoulder asymmetry in degrees (+: left shoulder higher)
    stride: float  # walking thigh swing amplitude (degrees)
    swing: float  # walking arm swing amplitude (degrees)
    lean: float  # habitual forward lean of the upper body (degrees)


@dataclass(frozen=True)
class Outfit:
    """One set of clothes. ``top2`` is the stripe/check colour; ``jacket`` an open jacket worn over the top."""

    top: RGB
    pattern: str  # solid | stripes | checks
    top2: RGB
    sleeves: str  # short | long
    jacket: RGB | None
    bottom: RGB
    bottom_type: str  # trousers | shorts | skirt
    shoes: RGB


@dataclass(frozen=True)
class Pose:
    """Joint angles in degrees; pairs are (left, right) of the person."""

    family: str
    yaw: float  # body facing: 0 faces the camera, 180 back, +90 faces image right, -90 image left
    head_yaw: float  # head turn relative to the body
    lean: float  # forward lean of the upper body about the pelvis
    thigh: tuple[float, float]  # forward swing of the thigh
    knee: tuple[float, float]  # knee flexion (shin swings back by this much)
    hip_abd: tuple[float, float]  # sideways spread of the legs
    arm: tuple[float, float]  # forward swing of the upper arm
    arm_abd: tuple[float, float]  # sideways raise of the arm (0 down, 90 horizontal, 160 raised)
    elbow: tuple[float, float]  # elbow flexion (forearm swings forward by this much)


def view_of(yaw: float) -> str:
    """The view label of a body yaw: ``front``, ``back``, ``left`` or ``right`` (the way the person faces)."""
    y = (yaw + 180.0) % 360.0 - 180.0
    if abs(y) <= 45:
        return "front"
    if abs(y) >= 135:
        return "back"
    return "right" if y > 0 else "left"


def sample_pose(family: str, yaw: float, body: Body, rng: np.random.Generator, phase: float) -> Pose:
    """Joint angles of a pose family with per-image jitter; ``phase`` in [0, 1) is the gait phase of walk/run."""
    u = rng.uniform
    ja = lambda s: (float(u(-s, s)), float(u(-s, s)))  # noqa: E731 - tiny local helper
    legs_apart = (float(u(2, 7)), float(u(2, 7)))
    arms_down = (float(u(6, 14)), float(u(6, 14)))
    if family in ("front_stand", "back_stand"):
        return Pose(family, yaw, float(u(-20, 20)), body.lean + float(u(-2, 2)), ja(4), (float(u(0, 8)),) * 2,
                    legs_apart, ja(8), arms_down, (float(u(5, 25)), float(u(5, 25))))
    if family in ("side_walk", "run"):
        run = family == "run"
        amp = body.stride * (1.35 if run else 1.0)
        w = 2 * math.pi * phase
        thigh = (amp * math.sin(w), amp * math.sin(w + math.pi))
        flex = 75.0 if run else 40.0
        # the knee bends most early in the swing (thigh still behind, moving forward) and straightens before contact
        knee = tuple(5 + flex * max(0.0, math.cos(w + k * math.pi + math.pi / 4)) + (20.0 if run else 0.0)
                     for k in (0, 1))
        arm_amp = body.swing * (1.5 if run else 1.0)
        arm = (-arm_amp * math.sin(w), -arm_amp * math.sin(w + math.pi))
        elbow = (float(u(75, 100)),) * 2 if run else (float(u(10, 25)), float(u(10, 25)))
        lean = body.lean + (float(u(8, 15)) if run else float(u(0, 4)))
        return Pose(family, yaw, float(u(-10, 10)), lean, thigh, knee, (2.0, 2.0), arm, (8.0, 8.0), elbow)
    if family == "arms_raised":
        both = u() < 0.6
        left = (float(u(140, 170)), float(u(0, 30)))  # (abduction, elbow)
        right = (float(u(140, 170)), float(u(0, 30))) if both else (float(u(6, 14)), float(u(5, 20)))
        if u() < 0.5:
            left, right = right, left
        return Pose(family, yaw, float(u(-15, 15)), body.lean, ja(3), (0.0, 0.0), legs_apart, ja(10),
                    (left[0], right[0]), (left[1], right[1]))
    if family == "crouch":
        thigh = (float(u(70, 95)), float(u(70, 95)))
        return Pose(family, yaw, float(u(-15, 15)), float(u(20, 35)), thigh, (float(u(110, 135)),) * 2,
                    (float(u(6, 14)),) * 2, (float(u(25, 55)), float(u(25, 55))), arms_down,
                    (float(u(20, 60)), float(u(20, 60))))
    raise ValueError(f"unknown pose family {family!r}; expected one of {POSE_FAMILIES}")


def pick(rng: np.random.Generator, options: Sequence[T]) -> T:
    """One element of a sequence, uniformly."""
    return options[int(rng.integers(len(options)))]


def _jitter(rng: np.random.Generator, c: RGB, amount: int = 8) -> RGB:
    return tuple(int(v) for v in np.clip(np.asarray(c) + rng.integers(-amount, amount + 1, 3), 0, 255))


def sample_body(rng: np.random.Generator) -> Body:
    """An identity: gender-dependent build, hair and face cues, plus persistent accessories and gait."""
    g = int(rng.random() < 0.55)
    u = rng.uniform
    build = u(0.8, 1.25)
    styles = STYLE_WEIGHTS[g]
    return Body(
        gender=g, height=float(np.clip(rng.normal(0.86 if g else 0.8, 0.045), 0.7, 0.95)),
        shoulder=u(0.24, 0.34) if g else u(0.2, 0.28), hip=u(0.16, 0.22) if g else u(0.19, 0.27),
        depth=u(0.5, 0.75), arm=0.052 * build, leg=0.075 * build, head=u(0.058, 0.078), leg_len=u(0.46, 0.53),
        skin=_jitter(rng, pick(rng, SKIN_TONES), 6), hair=_jitter(rng, pick(rng, HAIR_COLOURS), 6),
        hair_style=HAIR_STYLES[int(rng.choice(len(HAIR_STYLES), p=styles))],
        glasses=("none", "clear", "sun")[int(rng.choice(3, p=(0.7, 0.22, 0.08)))],
        beard=bool(g and rng.random() < 0.35),
        bag=("none", "backpack", "shoulder")[int(rng.choice(3, p=(0.6, 0.22, 0.18)))],
        bag_color=pick(rng, BAGS), tilt=u(-7, 7), stride=u(16, 32), swing=u(8, 32), lean=u(-3, 8))


def sample_outfit(rng: np.random.Generator, allow_skirt: bool = True) -> Outfit:
    """One set of clothes: top colour and pattern, optional jacket, bottom colour and type, shoes."""
    top = pick(rng, GARMENTS)
    top2 = pick(rng, [c for c in GARMENTS if sum(abs(a - b) for a, b in zip(c, top)) > 200])
    kinds = ("trousers", "shorts", "skirt") if allow_skirt else ("trousers", "shorts")
    probs = (0.62, 0.18, 0.2) if allow_skirt else (0.78, 0.22)
    return Outfit(top=top, pattern=("solid", "stripes", "checks")[int(rng.choice(3, p=(0.55, 0.25, 0.2)))],
                  top2=top2, sleeves="short" if rng.random() < 0.45 else "long",
                  jacket=pick(rng, JACKETS) if rng.random() < 0.25 else None, bottom=pick(rng, BOTTOMS),
                  bottom_type=kinds[int(rng.choice(len(kinds), p=probs))], shoes=pick(rng, SHOES))


def sample_family_yaw(rng: np.random.Generator, families: tuple[str, ...] = POSE_FAMILIES) -> tuple[str, float]:
    """A pose family (weighted) and a body yaw that suits it (front, back or side views)."""
    w = np.array([FAMILY_WEIGHTS[POSE_FAMILIES.index(f)] for f in families])
    fam = families[int(rng.choice(len(families), p=w / w.sum()))]
    side = 90.0 if rng.random() < 0.5 else -90.0
    n, u = float(rng.normal()), float(rng.random())
    yaw = {"front_stand": 15 * n, "back_stand": 180 + 15 * n, "side_walk": side + 12 * n,
           "run": side + 15 * n if u < 0.8 else 20 * n,  # mostly across the view, sometimes toward the camera
           "arms_raised": 15 * n if u < 0.75 else 180 + 15 * n,
           "crouch": 20 * n if u < 0.5 else side * 0.75 + 15 * n}[fam]
    if fam in ("front_stand", "arms_raised"):
        yaw = float(np.clip(yaw, -35, 35)) if abs(yaw) < 90 else yaw
    return fam, float(yaw)


def _dir(swing: float, abd: float, side: int) -> np.ndarray:
    s, a = math.radians(swing), math.radians(abd)
    return np.array([side * math.sin(a), -math.cos(a) * math.cos(s), math.cos(a) * math.sin(s)])


def lean(p: np.ndarray, pivot_y: float, deg: float) -> np.ndarray:
    """Rotate points (..., 3) about the horizontal x axis through (0, pivot_y, 0); positive leans forward."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    dy, z = p[..., 1] - pivot_y, p[..., 2]
    return np.stack([p[..., 0], pivot_y + dy * c - z * s, dy * s + z * c], axis=-1)



def shoulder_height(body: Body) -> float:
    return 1.0 - 1.8 * body.head - 0.035  # shoulder height


def skeleton(body: Body, pose: Pose) -> np.ndarray:
    """3-D points (N_POINTS, 3) in body-height units: COCO-17 joints, then neck, head centre, toes, hands, pelvis."""
    p = np.zeros((N_POINTS, 3))
    hip_len = body.leg_len
    seg = (hip_len - 0.045) / 2  # thigh = shin
    y_sh = shoulder_height(body)
    rise = math.tan(math.radians(body.tilt)) * body.shoulder / 2
    for i, side in ((0, 1), (1, -1)):  # 0 = person's left (+x), 1 = right
        hip = np.array([side * body.hip * 0.36, hip_len, 0.0])
        knee = hip + seg * _dir(pose.thigh[i], pose.hip_abd[i], side)
        ankle = knee + seg * _dir(pose.thigh[i] - pose.knee[i], pose.hip_abd[i], side)
        p[LHIP + i], p[LKNEE + i], p[LANK + i] = hip, knee, ankle
        p[LTOE + i] = ankle + 0.075 * np.array([0.0, -0.3, 0.954])
        sh = np.array([side * body.shoulder * 0.41, y_sh + side * rise, 0.0])
        el = sh + 0.165 * _dir(pose.arm[i], pose.arm_abd[i], side)
        fore = _dir(pose.arm[i] + pose.elbow[i], pose.arm_abd[i], side)
        p[LSH + i], p[LEL + i], p[LWR + i], p[LHAND + i] = sh, el, el + 0.14 * fore, el + 0.175 * fore
    r = body.head
    p[NECK] = (0.0, y_sh + 0.035, 0.0)
    p[HEAD] = (0.0, y_sh + 0.035 + 0.8 * r, 0.0)
    h = math.radians(pose.head_yaw)
    face = np.array([[0.0, -0.15, 0.95], [0.33, 0.1, 0.8], [-0.33, 0.1, 0.8], [0.8, 0.0, -0.05], [-0.8, 0.0, -0.05]])
    fx = face[:, 0] * math.cos(h) + face[:, 2] * math.sin(h)
    fz = -face[:, 0] * math.sin(h) + face[:, 2] * math.cos(h)
    p[NOSE:LSH] = p[HEAD] + r * np.stack([fx, face[:, 1], fz], axis=1)
    p[PELVIS] = (0.0, hip_len, 0.0)
    upper = [*range(NOSE, LHIP), NECK, HEAD, LHAND, LHAND + 1]
    p[upper] = lean(p[upper], hip_len, pose.lean)
    ground = min(p[LANK, 1], p[LANK + 1, 1], p[LTOE, 1], p[LTOE + 1, 1]) - 0.035
    p[:, 1] -= ground
    return p


def project(points: np.ndarray, yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """Orthographic camera: (image x (…,), depth toward the camera (…,)) for a body yaw in degrees."""
    c, s = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
    return points[..., 0] * c + points[..., 2] * s, -points[..., 0] * s + points[..., 2] * c
