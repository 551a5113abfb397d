"""Painting SynthCC people with PIL on the 2× canvas, back to front, with a part-label map.

:func:`layout` places a posed figure on the canvas; :func:`draw_person` projects the skeleton of
:mod:`rlqlib.synthcc.body`, paints legs, pelvis or skirt, torso, arms, bag and head in depth order, and returns
the image, a label map (exactly the pixels of each garment as drawn: the source of the clothes masks) and the
17 keypoints with visibility scores (lower where hidden by design: the face from behind, far-side limbs).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from rlqlib.synthcc.body import (HEAD, LANK, LEAR, LEL, LEYE, LHAND, LHIP, LKNEE, LSH, LTOE, LWR, NECK, NOSE,
                               PELVIS, RGB, Body, Outfit, Pose, lean, project, shoulder_height, skeleton)

# Part labels of the label map. FAR is added to parts on the far side of the body (shaded darker, then removed).
BG, SKIN, HAIR, SHIRT, BOTTOM, SHOES, BAG, JACKET, GLASSES = range(9)
TOP_LABELS = (SHIRT, JACKET)
FAR = 16


def _ring(a: float, d: float, y: float, n: int = 10) -> np.ndarray:
    """Points (n, 3) of a horizontal ellipse of half-width a (x) and half-depth d (z) at height y."""
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.stack([a * np.cos(t), np.full(n, y), d * np.sin(t)], axis=1)


def _hull(pts: np.ndarray) -> list[tuple[float, float]]:
    """Convex hull (monotone chain) of 2-D points (n, 2), as a polygon."""
    q = sorted({(round(float(x), 2), round(float(y), 2)) for x, y in pts})
    if len(q) < 3:
        return q

    def half(seq):
        out: list[tuple[float, float]] = []
        for pt in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (pt[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (pt[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(pt)
        return out

    lower, upper = half(q), half(q[::-1])
    return lower[:-1] + upper[:-1]


def _shade(c: RGB, f: float) -> RGB:
    return (min(255, int(c[0] * f)), min(255, int(c[1] * f)), min(255, int(c[2] * f)))


class _Painter:
    """Draws every primitive twice: colour on the RGB image, part label on the label map."""

    def __init__(self, img: Image.Image, lab: Image.Image):
        self.d, self.l = ImageDraw.Draw(img), ImageDraw.Draw(lab)

    def capsule(self, a, b, w, color, label):
        r = w / 2
        for dr, v in ((self.d, color), (self.l, label)):
            dr.line([tuple(a), tuple(b)], fill=v, width=max(1, round(w)))
            dr.ellipse([a[0] - r, a[1] - r, a[0] + r, a[1] + r], fill=v)
            dr.ellipse([b[0] - r, b[1] - r, b[0] + r, b[1] + r], fill=v)

    def poly(self, pts, color, label):
        self.d.polygon(pts, fill=color)
        self.l.polygon(pts, fill=label)

    def ellipse(self, c, rx, ry, color, label, outline: int = 0):
        box = [c[0] - rx, c[1] - ry, c[0] + rx, c[1] + ry]
        if outline:
            self.d.ellipse(box, outline=color, width=outline)
            self.l.ellipse(box, outline=label, width=outline)
        else:
            self.d.ellipse(box, fill=color)
            self.l.ellipse(box, fill=label)

    def chord(self, c, rx, ry, start, end, color, label):
        box = [c[0] - rx, c[1] - ry, c[0] + rx, c[1] + ry]
        self.d.chord(box, start, end, fill=color)
        self.l.chord(box, start, end, fill=label)

    def line(self, pts, w, color, label):
        self.d.line(pts, fill=color, width=max(1, round(w)))
        self.l.line(pts, fill=label, width=max(1, round(w)))


def layout(body: Body, pose: Pose, canvas_hw: tuple[int, int], fill: float, dx: float, margin: float
           ) -> tuple[float, float, float]:
    """Scale (px per body height) and origin (centre x, ground y) placing the figure on the canvas.

    The figure is ``fill`` × canvas height tall when standing, shifted by ``dx`` (fraction of width); raised arms
    or a wide stance shrink it to fit inside ``margin`` (fraction of height); crouching enlarges it a little, as a
    person detector's tight box would.
    """
    h, w = canvas_hw
    pts = skeleton(body, pose)
    x, _ = project(pts, pose.yaw)
    pad = max(body.leg, body.arm) * 0.8 + 0.02
    top = max(pts[:, 1].max() + 0.02, pts[HEAD, 1] + body.head * (1.3 if body.hair_style == "curly" else 1.1))
    x0, x1 = x.min() - pad, x.max() + pad
    scale = fill * h
    if pose.family == "crouch":
        scale *= 1.25
    scale = min(scale, (1 - 2 * margin) * h / top, w / (x1 - x0))  # limbs may touch the sides, as in tight crops
    cx = w / 2 + dx * w - scale * (x0 + x1) / 2
    gy = h * (1 - margin) - (h * (1 - 2 * margin) - scale * top) * 0.35  # a little room above the head
    return scale, cx, gy


class _Figure:
    """A posed person being painted: projection to canvas pixels and the depth-ordered list of parts."""

    def __init__(self, img: Image.Image, lab: Image.Image, body: Body, pose: Pose, scale: float, cx: float,
                 gy: float):
        self.pen, self.body, self.pose, self.s, self.cx, self.gy = _Painter(img, lab), body, pose, scale, cx, gy
        self.pts = skeleton(body, pose)  # (N_POINTS, 3), feet on the ground
        self.ix, self.dep = project(self.pts, pose.yaw)  # (N_POINTS,) image x and depth, body units
        self.xy = np.stack([cx + scale * self.ix, gy - scale * self.pts[:, 1]], axis=1)  # (N_POINTS, 2) px
        self.ground = body.leg_len - self.pts[PELVIS, 1]  # how far skeleton() moved the figure down
        self.facing = math.cos(math.radians(pose.yaw))  # 1 facing the camera, -1 facing away
        self.far_cut = -0.3 * body.hip * 0.36  # parts deeper than this are on the far side
        self._parts: list[tuple[float, int, Callable[[], None]]] = []

    def P(self, i: int) -> tuple[float, float]:
        """Canvas pixel position of skeleton point i."""
        return float(self.xy[i, 0]), float(self.xy[i, 1])

    def add(self, depth: float, fn: Callable[[], None]) -> None:
        """Queue a painting step; steps run from far (low depth) to near, ties in insertion order."""
        self._parts.append((depth, len(self._parts), fn))

    def hull(self, pts3: np.ndarray) -> list[tuple[float, float]]:
        """Canvas polygon (convex hull) of 3-D points given in unshifted body coordinates (m, 3)."""
        x3, _ = project(pts3, self.pose.yaw)
        return _hull(np.stack([self.cx + self.s * x3, self.gy - self.s * (pts3[:, 1] - self.ground)], axis=1))

    def rings(self, rings: list[np.ndarray]) -> list[tuple[float, float]]:
        """Hull of horizontal rings; rings above the pelvis lean with the upper body."""
        b, lean_deg = self.body, self.pose.lean
        return self.hull(np.concatenate([lean(r, b.leg_len, lean_deg) if r[0, 1] > b.leg_len + 0.02 else r
                                         for r in rings]))

    def paint(self) -> None:
        for _, _, fn in sorted(self._parts, key=lambda t: (t[0], t[1])):
            fn()


def draw_person(canvas: np.ndarray, body: Body, outfit: Outfit, pose: Pose, scale: float, cx: float, gy: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paint a person on a copy of ``canvas`` (H, W, 3) uint8.

    Returns:
        rgb (H, W, 3) uint8, labels (H, W) uint8 (part labels, BG where the background shows), keypoints (17, 3)
        as canvas pixel x, y and a visibility score (1 visible, lower when hidden by design: face from behind,
        far-side limbs behind the torso).
    """
    img = Image.fromarray(canvas)
    lab = Image.new("L", img.size, BG)
    fig = _Figure(img, lab, body, pose, scale, cx, gy)
    _add_legs(fig, outfit)
    _add_trunk(fig, outfit)
    _add_arms(fig, outfit)
    _add_bag(fig)
    _add_head(fig)
    fig.paint()
    rgb, labels = np.asarray(img).copy(), np.asarray(lab).copy()
    _patterns(rgb, labels, outfit, fig.P(NECK), 0.032 * scale)
    far_px = labels >= FAR
    rgb[far_px] = (rgb[far_px] * 0.85).astype(np.uint8)
    labels[far_px] -= FAR
    kp = np.concatenate([fig.xy[:17], _visibility(body, fig.dep, fig.ix)[:, None]], axis=1)
    return rgb, labels, kp


def _add_legs(fig: _Figure, o: Outfit) -> None:
    """Thigh, shin and shoe of each leg, in trousers, or bare below shorts or a skirt."""
    body, pen, s = fig.body, fig.pen, fig.s
    for i in (0, 1):
        d = float(fig.dep[LHIP + i])
        far = FAR if d < fig.far_cut else 0
        f = 0.8 if far else 1.0

        def leg(i=i, far=far, f=f):
            th, sh = body.leg * s, body.leg * s * 0.78
            hip, knee, ank, toe = fig.P(LHIP + i), fig.P(LKNEE + i), fig.P(LANK + i), fig.P(LTOE + i)
            skin, bottom = _shade(body.skin, f), _shade(o.bottom, f)
            if o.bottom_type == "trousers":
                pen.capsule(hip, knee, th * 1.08, bottom, BOTTOM + far)
                pen.capsule(knee, ank, sh * 1.12, bottom, BOTTOM + far)
            else:
                pen.capsule(knee, ank, sh, skin, SKIN + far)
                pen.capsule(hip, knee, th, skin, SKIN + far)
                if o.bottom_type == "shorts":
                    mid = (hip[0] + 0.6 * (knee[0] - hip[0]), hip[1] + 0.6 * (knee[1] - hip[1]))
                    pen.capsule(hip, mid, th * 1.12, bottom, BOTTOM + far)
            pen.capsule(ank, toe, sh * 0.95, _shade(o.shoes, f), SHOES + far)

        fig.add(d - 0.02, leg)


def _add_trunk(fig: _Figure, o: Outfit) -> None:
    """Pelvis (or skirt down to the knees), neck, and the torso in the top or an open jacket over it."""
    body, pen, s, pts = fig.body, fig.pen, fig.s, fig.pts
    y_w = body.leg_len + 0.06  # waist
    a_hip = body.hip / 2 + body.leg * 0.15
    waist = _ring(a_hip * 0.95, a_hip * body.depth, y_w)
    if o.bottom_type == "skirt":
        kn = (pts[LKNEE] + pts[LKNEE + 1]) / 2 + np.array([0, fig.ground, 0])
        a = max(a_hip + 0.04, abs(pts[LKNEE, 0] - pts[LKNEE + 1, 0]) / 2 + body.leg * 0.6 + 0.02)
        dd = max(a * body.depth, abs(pts[LKNEE, 2] - pts[LKNEE + 1, 2]) / 2 + body.leg * 0.6 + 0.02)
        lower = _ring(a, dd, kn[1] + 0.03) + np.array([kn[0], 0, kn[2]])  # hem above the knees
    else:
        lower = _ring(a_hip, a_hip * body.depth, body.leg_len - 0.035)  # crotch
    fig.add(-0.005, lambda: pen.poly(fig.rings([waist, lower]), o.bottom, BOTTOM))

    y_sh = shoulder_height(body)
    a_sh = body.shoulder / 2
    collar = _ring(a_sh * 0.45, a_sh * body.depth * 0.8, y_sh + 0.022)  # sloping shoulders: collar ring above
    shoulders = _ring(a_sh, a_sh * body.depth, y_sh - 0.02)
    for ring in (collar, shoulders):
        ring[:, 1] += ring[:, 0] * math.tan(math.radians(body.tilt))
    torso = [collar, shoulders, _ring(a_hip * 0.98, a_hip * body.depth, y_w - 0.01)]
    neck, head = fig.P(NECK), fig.P(HEAD)
    fig.add(-0.002, lambda: pen.capsule(neck, ((neck[0] + head[0]) / 2, (neck[1] + head[1]) / 2),
                                        body.head * 0.9 * s, body.skin, SKIN))

    def paint_torso():
        poly = fig.rings(torso)
        if o.jacket is None:
            pen.poly(poly, o.top, SHIRT)
            return
        pen.poly(poly, o.jacket, JACKET)
        if fig.facing > 0.3:  # the open front shows the shirt
            c0, c1 = np.array(neck) + (0, 0.02 * s), np.array(fig.P(PELVIS)) - (0, 0.07 * s)
            half = a_sh * 0.33 * s * fig.facing
            pen.poly([(c0[0] - half, c0[1]), (c0[0] + half, c0[1]), (c1[0] + half * 0.8, c1[1]),
                      (c1[0] - half * 0.8, c1[1])], o.top, SHIRT)

    fig.add(0.0, paint_torso)


def _add_arms(fig: _Figure, o: Outfit) -> None:
    """Upper arm, forearm and hand; sleeves long (or a jacket) or short."""
    body, pen, s = fig.body, fig.pen, fig.s
    for i in (0, 1):
        d = float(np.mean(fig.dep[[LSH + i, LEL + i, LWR + i]]))
        far = FAR if fig.dep[LSH + i] < fig.far_cut else 0
        f = 0.8 if far else 1.0

        def arm(i=i, far=far, f=f):
            w = body.arm * s
            sh, el, wr, hd = fig.P(LSH + i), fig.P(LEL + i), fig.P(LWR + i), fig.P(LHAND + i)
            skin = _shade(body.skin, f)
            sleeve_c, sleeve_l = (o.jacket, JACKET) if o.jacket is not None else (o.top, SHIRT)
            sleeve_c = _shade(sleeve_c, f)
            long = o.sleeves == "long" or o.jacket is not None
            if long:
                pen.capsule(el, wr, w * 0.9, sleeve_c, sleeve_l + far)
            else:
                pen.capsule(el, wr, w * 0.8, skin, SKIN + far)
            pen.ellipse(hd, w * 0.5, w * 0.5, skin, SKIN + far)
            if long:
                pen.capsule(sh, el, w, sleeve_c, sleeve_l + far)
            else:
                pen.capsule(sh, el, w * 0.88, skin, SKIN + far)
                mid = (sh[0] + 0.5 * (el[0] - sh[0]), sh[1] + 0.5 * (el[1] - sh[1]))
                pen.capsule(sh, mid, w * 1.08, sleeve_c, sleeve_l + far)

        fig.add(d + 0.003, arm)


def _patterns(rgb: np.ndarray, labels: np.ndarray, o: Outfit, origin: tuple[float, float], period: float) -> None:
    """Stripes or checks of ``top2`` on the visible shirt pixels (in place), anchored at the neck."""
    if o.pattern == "solid":
        return
    ys, xs = np.nonzero((labels % FAR) == SHIRT)
    p = max(2.0, period)
    band_y = np.floor((ys - origin[1]) / p).astype(np.int64)
    on = band_y % 2 == 1
    if o.pattern == "checks":
        on = (band_y + np.floor((xs - origin[0]) / p).astype(np.int64)) % 2 == 1
    rgb[ys[on], xs[on]] = o.top2


def _visibility(body: Body, dep: np.ndarray, ix: np.ndarray) -> np.ndarray:
    """Keypoint scores (17,): 1.0 visible; lower for points hidden by design."""
    v = np.ones(17)
    head_dep = dep[HEAD]
    r = body.head
    for j in (NOSE, LEYE, LEYE + 1):
        rel = (dep[j] - head_dep) / r
        v[j] = 1.0 if rel > 0.15 else (0.5 if rel > -0.2 else 0.1)
    for j in (LEAR, LEAR + 1):
        v[j] = 1.0 if (dep[j] - head_dep) / r > -0.4 else 0.3
    half = max(abs(ix[LSH] - ix[LSH + 1]), abs(ix[LHIP] - ix[LHIP + 1])) / 2 + body.shoulder * body.depth / 2
    centre = (ix[LSH] + ix[LSH + 1] + ix[LHIP] + ix[LHIP + 1]) / 4
    for j in range(LSH, 17):
        side = (j - LSH) % 2
        far = dep[[LSH + side, LHIP + side]].mean() < -0.3 * body.hip * 0.36
        if far and dep[j] < 0 and abs(ix[j] - centre) < half:
            v[j] = 0.5
    return v


def _add_bag(fig: _Figure) -> None:
    """A backpack (on the back; straps seen from the front) or a shoulder bag (strap across, bag at the hip)."""
    body, pen, s, c = fig.body, fig.pen, fig.s, fig.body.bag_color
    if body.bag == "backpack":
        top = np.array([0.0, shoulder_height(body) - 0.03, -(body.shoulder * body.depth / 2 + 0.035)])
        bot = top + np.array([0.0, -0.2, 0.0])
        quad = np.array([[-0.11, 0, 0], [0.11, 0, 0]])
        box = lean(np.concatenate([top + quad, bot + quad, top + quad + [0, 0, -0.06], bot + quad + [0, 0, -0.06]]),
                   body.leg_len, fig.pose.lean)  # (8, 3)
        hull = fig.hull(box)
        fig.add(float(project(box, fig.pose.yaw)[1].mean()) - 0.01, lambda: pen.poly(hull, c, BAG))
        if fig.facing > 0.3:  # straps over the shoulders
            nk = np.array(fig.P(NECK))
            for i in (0, 1):
                sh, hp = np.array(fig.P(LSH + i)), np.array(fig.P(LHIP + i))
                a = sh + (nk - sh) * 0.4 + (0, 0.01 * s)
                b = sh + (hp - sh) * 0.45 + (nk - sh) * (0.15, 0)
                fig.add(0.001, lambda a=a, b=b: pen.line([tuple(a), tuple(b)], 0.025 * s, _shade(c, 0.8), BAG))
    elif body.bag == "shoulder":  # strap from the left shoulder across to a bag at the right hip
        sh, end = fig.P(LSH), np.array(fig.P(LHIP + 1)) + (0, -0.02 * s)
        fig.add(0.001, lambda: pen.line([sh, tuple(end)], 0.03 * s, _shade(c, 0.8), BAG))
        bag_pt = fig.pts[LHIP + 1] + np.array([-0.06, 0.0, 0.04])
        bx, bd = project(bag_pt, fig.pose.yaw)
        centre = (fig.cx + s * float(bx), fig.gy - s * float(bag_pt[1]))
        hw, hh = 0.07 * s * (0.6 + 0.4 * abs(fig.facing)), 0.055 * s
        box2 = [(centre[0] - hw, centre[1] - hh), (centre[0] + hw, centre[1] - hh),
                (centre[0] + hw, centre[1] + hh), (centre[0] - hw, centre[1] + hh)]
        fig.add(float(bd) + 0.004, lambda: pen.poly(box2, c, BAG))


def _add_head(fig: _Figure) -> None:
    """Hair behind the head (at its own depth), then head, face, beard, hair cap and glasses on top of all."""
    body, pen, P, dep = fig.body, fig.pen, fig.P, fig.dep
    hc, ry = fig.P(HEAD), body.head * fig.s  # centre and half-height in px
    th = math.radians(fig.pose.yaw + fig.pose.head_yaw)
    f, fx = math.cos(th), math.sin(th)
    rx = ry * math.hypot(0.8 * f, 0.92 * fx)
    hair, style = body.hair, body.hair_style
    sgn = 1.0 if fx >= 0 else -1.0
    back_x = hc[0] - 0.3 * fx * rx  # hair mass sits toward the back of the head
    behind = -body.head * f  # depth of the back of the head

    def hair_back():
        if style in ("short", "ponytail", "bun"):
            pen.ellipse((back_x, hc[1] - 0.08 * ry), 1.1 * rx, 1.05 * ry, hair, HAIR)
        if style == "medium":
            pen.chord((back_x, hc[1] - 0.02 * ry), 1.18 * rx, 1.12 * ry, 150, 390, hair, HAIR)
        if style == "long":
            pen.chord((back_x, hc[1] - 0.02 * ry), 1.2 * rx, 1.12 * ry, 140, 400, hair, HAIR)
            top, bottom = hc[1], hc[1] + 2.5 * ry
            wx = 1.12 * rx if abs(f) > 0.5 else 0.8 * rx
            x0 = back_x - 0.25 * fx * rx
            pen.poly([(x0 - wx, top), (x0 + wx, top), (x0 + wx * 0.9, bottom), (x0 - wx * 0.9, bottom)], hair, HAIR)
        if style == "curly":
            pen.ellipse((back_x, hc[1] - 0.2 * ry), 1.45 * rx, 1.3 * ry, hair, HAIR)
        if style == "ponytail" and abs(f) < 0.9:
            tail = (hc[0] - sgn * 1.05 * rx, hc[1] - 0.1 * ry)
            pen.capsule(tail, (tail[0] - sgn * 0.2 * rx, tail[1] + 1.5 * ry), 0.5 * ry, hair, HAIR)
        if style == "bun":
            pen.ellipse((hc[0] - 0.4 * fx * rx, hc[1] - 0.95 * ry), 0.42 * ry, 0.42 * ry, hair, HAIR)

    fig.add(behind - 0.01, hair_back)

    def head():
        pen.ellipse(hc, rx, ry, body.skin, SKIN)
        dark = _shade(body.skin, 0.45)
        if f > 0.25:  # eyes
            for j in (LEYE, LEYE + 1):
                if dep[j] > dep[HEAD] + 0.15 * body.head:
                    e = P(j)
                    pen.ellipse(e, 0.12 * ry, 0.1 * ry, (30, 25, 25), SKIN)
            mouth_y = hc[1] + 0.5 * ry
            mx = P(NOSE)[0]
            pen.line([(mx - 0.25 * rx * f, mouth_y), (mx + 0.25 * rx * f, mouth_y)], 0.07 * ry, dark, SKIN)
        elif f > -0.25:  # profile: one eye near the front
            e = (hc[0] + sgn * 0.55 * rx, hc[1] - 0.1 * ry)
            pen.ellipse(e, 0.1 * ry, 0.1 * ry, (30, 25, 25), SKIN)
        if body.beard and f > -0.3:
            beard = _shade(hair, 0.85)
            if f > 0.4:
                pen.chord(hc, rx * 1.02, ry * 1.02, 15, 165, beard, HAIR)
            else:
                start = -10 if sgn > 0 else 90
                pen.chord((hc[0], hc[1] + 0.03 * ry), rx * 1.02, ry, start, start + 100, beard, HAIR)
        if style != "bald":
            cap = hair if style != "buzz" else tuple(int(0.6 * h + 0.4 * k) for h, k in zip(hair, body.skin))
            if f > 0.3:
                lo = 200 if style == "buzz" else 190
                pen.chord((hc[0], hc[1] - 0.04 * ry), 1.06 * rx, 1.06 * ry, lo, 540 - lo, cap, HAIR)
            elif f < -0.3:
                pen.chord((hc[0], hc[1] - 0.02 * ry), 1.05 * rx, 1.04 * ry, 140 if style != "buzz" else 160,
                          400 if style != "buzz" else 380, cap, HAIR)
            else:
                a0, a1 = (105, 300) if sgn > 0 else (240, 435)
                pen.chord((hc[0] - 0.04 * sgn * rx, hc[1] - 0.04 * ry), 1.06 * rx, 1.06 * ry, a0, a1, cap, HAIR)
        if body.glasses != "none" and f > -0.2:
            frame = (20, 20, 25)
            lw = max(1.0, 0.09 * ry)
            if f > 0.3:
                eyes = [P(LEYE + k) for k in (0, 1)]
                for e in eyes:
                    if body.glasses == "sun":
                        pen.ellipse(e, 0.26 * ry, 0.2 * ry, frame, GLASSES)
                    else:
                        pen.ellipse(e, 0.26 * ry, 0.2 * ry, frame, GLASSES, outline=round(lw))
                pen.line([eyes[0], eyes[1]], lw, frame, GLASSES)
            else:
                e = (hc[0] + sgn * 0.6 * rx, hc[1] - 0.1 * ry)
                pen.line([e, (hc[0] - sgn * 0.1 * rx, hc[1] - 0.05 * ry)], lw, frame, GLASSES)
                pen.ellipse(e, 0.2 * ry, 0.18 * ry, frame, GLASSES, outline=0 if body.glasses == "sun" else round(lw))

    fig.add(100.0, head)  # the head is painted last
