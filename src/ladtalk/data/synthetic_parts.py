"""Parts of the synthetic face: seeded geometry and colours, drawing helpers, the eyes and the mouth."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return (t * t * (3 - 2 * t)).astype(np.float32)


def gauss(X: np.ndarray, Y: np.ndarray, x0: float, y0: float, sx: float, sy: float) -> np.ndarray:
    return np.exp(-0.5 * (((X - x0) / sx) ** 2 + ((Y - y0) / sy) ** 2)).astype(np.float32)


def over(dst: np.ndarray, rgb: np.ndarray, alpha: np.ndarray) -> None:
    """Composite straight `rgb` with `alpha` over the premultiplied RGBA `dst`, in place."""
    a = np.asarray(alpha, np.float32)[..., None]
    dst *= 1 - a
    dst[..., :3] += rgb * a
    dst[..., 3:] += a


def draw_strokes(size: int, strokes: list[np.ndarray] | np.ndarray, thickness: float, scale: int = 2,
                 values: list[float] | None = None, base: float = 0.0,
                 window: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Anti-aliased polylines (normalised coords) drawn at `scale`x and area-averaged: float32 (size,size).
    With `values`, each stroke writes its own value over `base` (a texture); without, coverage in [0,1].
    `window` (row, col, height, width) in pixels draws only that part of the canvas (and returns it)."""
    r0, c0, h, w = window or (0, 0, size, size)
    big = np.full((h * scale, w * scale), base, np.float32)
    width = max(1, int(round(thickness * scale)))
    shift = 4
    offset = np.array([c0, r0], np.float32)
    for k, pts in enumerate(strokes):
        p = np.round((pts * size - offset) * scale * (1 << shift)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(big, [p], False, float(values[k]) if values is not None else 1.0, width, cv2.LINE_8, shift)
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)


def curves(x: np.ndarray, y: np.ndarray, angle: np.ndarray, length: np.ndarray, bend: np.ndarray,
           steps: int) -> np.ndarray:
    """Gently bending strokes float32 (n, steps+1, 2) in normalised coordinates, all at once."""
    ang = np.asarray(angle, np.float64)[:, None] + np.asarray(bend, np.float64)[:, None] * (
        np.arange(1, steps + 1)[None] / steps)
    step = np.asarray(length, np.float64)[:, None] / steps
    dx = np.concatenate([np.zeros((len(ang), 1)), np.cumsum(np.cos(ang) * step, 1)], 1)
    dy = np.concatenate([np.zeros((len(ang), 1)), np.cumsum(np.sin(ang) * step, 1)], 1)
    return np.stack([np.asarray(x)[:, None] + dx, np.asarray(y)[:, None] + dy], -1).astype(np.float32)


@dataclass(frozen=True)
class Geometry:
    """Where the parts of the face sit, in units of the frame size (x right, y down)."""

    cx: float
    cy: float
    a: float  # half width of the head at its widest
    b_up: float  # centre to the top of the skull
    b_low: float  # centre to the chin
    jaw: float  # how much the face narrows towards the chin
    eye_y: float
    eye_dx: float
    eye_w: float  # half width of an eye
    brow_y: float
    nose_y: float  # nose tip
    mouth_y: float
    mouth_w: float  # half width of the mouth
    mouth_open: float  # opening at full openness
    hairline_y: float
    ear_y: float
    part_x: float
    mole: tuple[float, float]

    @property
    def chin_y(self) -> float:
        return self.cy + self.b_low

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Geometry:
        j = lambda s: float(rng.uniform(-s, s))  # noqa: E731
        mole_spots = [(0.40, 0.63), (0.60, 0.60), (0.44, 0.70), (0.37, 0.55), (0.62, 0.69)]
        mx, my = mole_spots[rng.integers(len(mole_spots))]
        return cls(cx=0.5, cy=0.47 + j(0.005), a=0.228 + j(0.008), b_up=0.33, b_low=0.30 + j(0.008),
                   jaw=0.45 + j(0.05), eye_y=0.452, eye_dx=0.098 + j(0.004), eye_w=0.044, brow_y=0.405 + j(0.004),
                   nose_y=0.573 + j(0.004), mouth_y=0.655 + j(0.004), mouth_w=0.085 + j(0.006),
                   mouth_open=0.07, hairline_y=0.25 + j(0.015), ear_y=0.505,
                   part_x=0.5 + float(rng.choice([-1, 1])) * rng.uniform(0.04, 0.09),
                   mole=(mx + j(0.01), my + j(0.01)))

    def half_width(self, y: np.ndarray) -> np.ndarray:
        """Half width of the face outline at height y (0 outside): an egg that narrows to the chin."""
        t = np.linspace(0, np.pi, 721)
        c = np.cos(t)
        ys = self.cy - np.where(c > 0, self.b_up, self.b_low) * c
        ws = self.a * np.sin(t) ** 0.6 * (1 - self.jaw * np.maximum(0, -c) ** 2)
        return np.interp(y, ys, ws, left=0.0, right=0.0).astype(np.float32)


@dataclass(frozen=True)
class Style:
    """Seeded colours (RGB in [0,1]) and texture amounts."""

    skin: np.ndarray
    hair: np.ndarray
    iris: np.ndarray
    lips: np.ndarray
    shirt: np.ndarray
    wall: np.ndarray
    freckle_tint: np.ndarray
    freckle_count: int
    pore_density: float
    strand_count: int
    shelf_y: float

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Style:
        f = lambda *v: np.array(v, np.float32)  # noqa: E731
        pick = lambda options: options[rng.integers(len(options))]  # noqa: E731
        skin = pick([f(0.87, 0.69, 0.58), f(0.80, 0.60, 0.48), f(0.70, 0.52, 0.40), f(0.90, 0.74, 0.64)])
        skin = np.clip(skin * rng.uniform(0.96, 1.04, 3).astype(np.float32), 0, 1)
        hair = pick([f(0.20, 0.13, 0.08), f(0.10, 0.08, 0.07), f(0.38, 0.18, 0.09), f(0.45, 0.33, 0.21)])
        iris = pick([f(0.36, 0.22, 0.12), f(0.30, 0.45, 0.60), f(0.32, 0.45, 0.30), f(0.45, 0.36, 0.18)])
        lips = np.clip(skin * f(0.85, 0.60, 0.60) + f(0.04, 0.0, 0.01), 0, 1)
        shirt = pick([f(0.16, 0.22, 0.35), f(0.30, 0.30, 0.32), f(0.45, 0.18, 0.16), f(0.18, 0.32, 0.26)])
        wall = pick([f(0.62, 0.66, 0.70), f(0.70, 0.64, 0.56), f(0.50, 0.56, 0.52), f(0.66, 0.60, 0.62)])
        return cls(skin=skin, hair=hair, iris=iris, lips=lips, shirt=shirt, wall=wall,
                   freckle_tint=f(0.84, 0.74, 0.66), freckle_count=int(rng.integers(70, 140)),
                   pore_density=float(rng.uniform(0.10, 0.16)), strand_count=int(rng.integers(2600, 3400)),
                   shelf_y=float(rng.uniform(0.25, 0.4)))


def grid(size: int, x0: float, x1: float, y0: float, y1: float):
    """Pixel box covering [x0,x1]x[y0,y1] (normalised) and its pixel-centre coordinates, normalised."""
    px0, py0 = max(0, int(np.floor(x0 * size))), max(0, int(np.floor(y0 * size)))
    px1, py1 = min(size, int(np.ceil(x1 * size))), min(size, int(np.ceil(y1 * size)))
    ys, xs = np.mgrid[py0:py1, px0:px1].astype(np.float32)
    return (py0, px0), (xs + 0.5) / size, (ys + 0.5) / size


def _band(Y: np.ndarray, top: np.ndarray, bottom: np.ndarray, size: int) -> np.ndarray:
    """Anti-aliased coverage of top < y < bottom, one pixel of softness."""
    return (np.clip((Y - top) * size + 0.5, 0, 1) * np.clip((bottom - Y) * size + 0.5, 0, 1)).astype(np.float32)


def eye_patch(size: int, g: Geometry, st: Style, side: int, closure: float, rng: np.random.Generator):
    """One eye at a blink level: ((row, col), premultiplied RGBA float32 patch)."""
    ex, ey, ew = g.cx + side * g.eye_dx, g.eye_y, g.eye_w
    origin, X, Y = grid(size, ex - 1.4 * ew, ex + 1.4 * ew, ey - 0.05, ey + 0.03)
    patch = np.zeros(X.shape + (4,), np.float32)
    t = (X - ex) / ew
    medial = -side * t  # +1 at the inner corner (towards the nose)
    lid = np.clip(1 - t ** 2, 0, 1)
    upper = ey - 0.019 * lid ** 0.7 * (1 + 0.12 * medial)
    lower = ey + 0.011 * lid ** 0.9 * (1 - 0.15 * medial)
    upper = upper + closure * (lower - upper) * 0.97
    opening = _band(Y, upper, lower, size) * (np.abs(t) < 1)

    sclera = np.array([0.86, 0.81, 0.78], np.float32) * (0.55 + 0.45 * lid ** 0.7)[..., None]
    sclera = sclera + gauss(X, Y, ex - side * 0.9 * ew, ey + 0.002, 0.005, 0.004)[..., None] * [0.2, -0.3, -0.3]
    r_iris = 0.019
    ix, iy = ex + side * 0.002, ey + 0.001
    d = np.hypot(X - ix, Y - iy) / r_iris
    ang = np.arctan2(Y - iy, X - ix)
    streak = np.zeros_like(d)
    for k, ph in zip((7, 13, 23, 37), rng.uniform(0, 2 * np.pi, 4)):
        streak += np.sin(k * ang + ph + 2.5 * d) / 4
    iris = st.iris * (0.8 + 0.25 * streak + 0.2 * (d < 0.6))[..., None]
    iris = iris * (1 - 0.55 * smoothstep(0.75, 1.0, d))[..., None]
    iris = np.where((d < 0.38)[..., None], np.float32(0.03), iris)
    in_iris = np.clip((1 - d) * r_iris * size + 0.5, 0, 1)[..., None]
    ball = sclera * (1 - in_iris) + iris * in_iris
    ball = ball * (1 - 0.5 * np.exp(-np.clip(Y - upper, 0, None) * size / 1.8))[..., None]
    ball = ball + 0.9 * gauss(X, Y, ix - 0.35 * r_iris, iy - 0.35 * r_iris, 0.12 * r_iris + 0.35 / size,
                              0.12 * r_iris + 0.35 / size)[..., None]
    over(patch, np.clip(ball, 0, 1), opening)

    lash_line = np.exp(-0.5 * ((Y - upper) * size / 0.7) ** 2) * (np.abs(t) < 1.02)
    over(patch, np.array([0.07, 0.05, 0.04], np.float32), 0.85 * lash_line)
    water = np.exp(-0.5 * ((Y - lower) * size / 0.6) ** 2) * (np.abs(t) < 1.0)
    over(patch, st.skin * 0.7, 0.4 * water)

    strokes = []
    for k in range(30):
        tt = -0.95 + 1.9 * k / 29 + rng.normal(0, 0.02)
        lx = ex + tt * ew
        l_lid = max(0.0, 1 - tt ** 2)
        ly = ey - 0.019 * l_lid ** 0.7 * (1 - 0.12 * side * tt)
        ly = ly + closure * (ey + 0.011 * l_lid ** 0.9 * (1 + 0.15 * side * tt) - ly) * 0.97
        outward = max(side * tt, 0.0)  # 0 at the inner half, up to 1 at the outer corner
        # Angles drawn for the right-hand eye and mirrored; closing rotates the lashes from up to down.
        ang = (1 - closure) * (-np.pi / 2 + 0.35 + 0.6 * outward) + closure * (np.pi / 2 - 0.3 * outward)
        ang = ang if side > 0 else np.pi - ang
        ln = (0.008 + 0.006 * outward) * rng.uniform(0.8, 1.15)
        strokes.append((lx, ly, ang, ln, side * (0.5 - closure)))
    tt = -0.6 + 1.5 * np.arange(10) / 9  # the lower lashes, shorter and straight
    ly = ey + 0.011 * np.maximum(0.0, 1 - tt ** 2) ** 0.9 * (1 + 0.15 * tt)
    lower_strokes = curves(ex + side * tt * ew, ly, np.pi / 2 + side * 0.4 * tt, np.full(10, 0.004), np.zeros(10), 3)
    window = (origin[0], origin[1], X.shape[0], X.shape[1])
    # each upper lash: (x, y, angle, length, bend), drawn as a three-segment curve
    cover = draw_strokes(size, curves(*np.array(strokes).T, 3), thickness=0.4, scale=4, window=window)
    faint = draw_strokes(size, lower_strokes, thickness=0.3, scale=4, window=window)
    lash_rgb = np.array([0.05, 0.04, 0.035], np.float32)
    over(patch, lash_rgb, np.clip(cover * 1.2, 0, 0.9))
    over(patch, lash_rgb, np.clip(faint * 0.5, 0, 0.4))
    return origin, patch


# Widths of the upper teeth from the centre outwards (units of the frame size), as seen along the arch.
UPPER_TEETH = (0.020, 0.016, 0.015, 0.013, 0.012, 0.012)
LOWER_TEETH = (0.012, 0.012, 0.012, 0.011)
ARCH_RADIUS = 0.07


def _teeth(X: np.ndarray, widths: tuple[float, ...], size: int, rng_phase: float):
    """Per-pixel tooth index shading: (brightness in [0,1], gap darkness in [0,1], rounding in [0,1])."""
    edges = np.concatenate([[0.0], np.cumsum(widths)])
    proj = ARCH_RADIUS * np.sin(np.clip(edges / ARCH_RADIUS, 0, np.pi / 2))  # the arch turns away
    ax = np.abs(X - 0.5)
    k = np.clip(np.searchsorted(proj, ax) - 1, 0, len(widths) - 1)
    lo, hi = proj[k], proj[k + 1]
    u = (ax - lo) / np.maximum(hi - lo, 1e-6)  # 0..1 across the tooth
    gap_px = np.minimum(ax - lo, hi - ax) * size
    gap = 0.5 * np.exp(-0.5 * (gap_px / 0.4) ** 2) * (ax < proj[-1])
    depth = np.cos(np.clip(edges[k] / ARCH_RADIUS, 0, np.pi / 2)) ** 3
    tint = 0.92 + 0.08 * np.sin(7.3 * k + rng_phase)
    round_ = np.abs(2 * u - 1) ** 6
    return (depth * tint).astype(np.float32), gap.astype(np.float32), round_.astype(np.float32), ax < proj[-1]


def mouth_patch(size: int, g: Geometry, st: Style, openness: float, lip_noise: np.ndarray):
    """Lips, teeth and mouth interior at `openness` in [0,1]: ((row, col), premultiplied RGBA float32)."""
    o = float(np.clip(openness, 0, 1))
    w = g.mouth_w * (1 - 0.12 * o)
    h = o * g.mouth_open
    my = g.mouth_y
    origin, X, Y = grid(size, g.cx - w - 0.02, g.cx + w + 0.02, my - 0.04, my + 0.7 * h + 0.04)
    patch = np.zeros(X.shape + (4,), np.float32)
    t = (X - g.cx) / w
    lid = np.clip(1 - t ** 2, 0, 1)
    inner = np.clip(1 - (t / 0.85) ** 2, 0, 1) ** 0.75
    in_up, in_low = my - 0.3 * h * inner, my + 0.7 * h * inner
    bow = 1 + 0.15 * np.exp(-0.5 * ((np.abs(t) - 0.25) / 0.1) ** 2) - 0.12 * np.exp(-0.5 * (t / 0.07) ** 2)
    out_up = my - 0.3 * h * lid ** 0.5 - 0.019 * lid ** 0.45 * bow
    out_low = my + 0.7 * h * lid ** 0.5 + 0.025 * lid ** 0.6
    col = lip_noise[origin[1]:origin[1] + X.shape[1]][None, :]
    crease = 1 + 0.045 * col

    # Mouth interior: dark, deeper in the middle; a tongue low in the mouth.
    open_a = _band(Y, in_up, in_low, size) * (np.abs(t) < 0.85)
    depth = np.clip((Y - in_up) / np.maximum(in_low - in_up, 1e-4), 0, 1)
    cavity = np.array([0.20, 0.06, 0.06], np.float32) * (0.4 + 0.6 * np.abs(t) ** 2)[..., None]
    tongue = gauss(X, Y, g.cx, in_low, 0.5 * w, 0.3 * h + 0.5 / size) * (depth > 0.5)
    cavity = cavity * (1 - tongue[..., None]) + tongue[..., None] * st.lips * 0.65
    teeth_b, gap, rnd, in_arch = _teeth(X, UPPER_TEETH, size, 0.0)
    top_edge = my + 0.004 - 0.003 * rnd - 0.02 * (1 - teeth_b)
    upper_teeth = np.clip((top_edge - Y) * size + 0.5, 0, 1) * in_arch
    tooth = np.array([0.93, 0.90, 0.82], np.float32) * (teeth_b * (1 - 0.7 * gap))[..., None]
    tooth = tooth * (1 - 0.35 * np.exp(-np.clip(Y - in_up, 0, None) * size / 1.5))[..., None]
    lt_b, lt_gap, lt_rnd, lt_arch = _teeth(X, LOWER_TEETH, size, 1.0)
    lower_teeth = np.clip((Y - (in_low - 0.006 * o - 0.002 + 0.002 * lt_rnd)) * size + 0.5, 0, 1) * lt_arch
    ltooth = np.array([0.85, 0.82, 0.74], np.float32) * (lt_b * (1 - 0.7 * lt_gap))[..., None]
    inside = cavity * (1 - upper_teeth[..., None]) + tooth * upper_teeth[..., None]
    inside = inside * (1 - lower_teeth[..., None]) + ltooth * lower_teeth[..., None]
    over(patch, inside, open_a)

    # Lips: the upper faces down (darker), the lower catches the light; vertical creases; a moist highlight.
    up_a = _band(Y, out_up, in_up, size) * (lid > 0)
    up_rgb = st.lips * (0.72 * crease)[..., None]
    up_rgb = up_rgb + 0.03 * np.exp(-0.5 * ((Y - out_up) * size / 0.8) ** 2)[..., None]
    over(patch, np.clip(up_rgb, 0, 1), up_a)
    low_a = _band(Y, in_low, out_low, size) * (lid > 0)
    s = np.clip((Y - in_low) / np.maximum(out_low - in_low, 1e-4), 0, 1)
    low_rgb = st.lips * ((0.95 - 0.25 * s ** 2) * crease)[..., None]
    low_rgb = low_rgb + (0.22 * np.exp(-0.5 * ((s - 0.35) / 0.12) ** 2) * lid)[..., None]
    over(patch, np.clip(low_rgb, 0, 1), low_a)
    seam = np.exp(-0.5 * ((Y - my) * size / 0.7) ** 2) * (1 - smoothstep(0.0, 0.4 / size * 4, h)) * (lid > 0)
    over(patch, np.array([0.25, 0.09, 0.08], np.float32), 0.75 * seam * lid ** 0.3)
    corners = sum(gauss(X, Y, g.cx + s_ * w, my, 1.2 / size, 1.2 / size) for s_ in (-1, 1))
    over(patch, np.array([0.3, 0.15, 0.12], np.float32), 0.45 * corners)
    return origin, patch
