"""Procedural, seeded face renderer: precomputed texture layers, warped per frame, with a live mouth and eyes.

Everything is drawn once in a canonical head frame (a lit height field with pores, freckles, a mole, hair and
brows); each frame only drops the jaw (cv2.remap), pastes the eyes and mouth and moves the head (cv2.warpAffine),
so the texture moves with the head and never changes from frame to frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from ladtalk.data.synthetic_parts import (
    Geometry,
    Style,
    curves,
    draw_strokes,
    eye_patch,
    gauss,
    grid,
    mouth_patch,
    over,
    smoothstep,
)


class FaceRenderer:
    """Renders the seeded synthetic face: `render(openness, blink, affine) -> uint8 (S,S,3) RGB`."""

    BLINK_LEVELS = 12
    ZOOM = 1.12
    ANCHOR = (0.5, 0.45)  # head-canvas point shown at the same normalised place in the frame

    def __init__(self, size: int, seed: int):
        self.size = S = int(size)
        self.rng = np.random.default_rng([seed, 0xFACE])
        self.style = Style.sample(self.rng)
        self.geom = g = Geometry.sample(self.rng)
        # The head is drawn on its own canvas, ZOOM times the frame, and shown at scale 1: a face that
        # fills more of the frame without any resampling of its texture.
        self.R = R = int(round(S * self.ZOOM))
        _, self.X, self.Y = grid(S, 0, 1, 0, 1)  # normalised frame coordinates
        _, self.HX, self.HY = grid(R, 0, 1, 0, 1)  # normalised head-canvas coordinates
        self.background = self._background()
        self.torso_pm = self._torso()
        self.head_pm = self._head()
        self._kept = np.repeat(1 - self.torso_pm[..., 3:4], 3, axis=-1)  # what the torso leaves visible
        self._bg_kept = self.background * self._kept
        self._bg_torso = self._bg_kept + self.torso_pm[..., :3]
        # One seed per eye, shared by its blink levels: the iris and lashes stay the same as the lid moves.
        eye_seeds = self.rng.integers(2 ** 31, size=2)
        self.eyes = [[eye_patch(R, g, self.style, side, c / (self.BLINK_LEVELS - 1), np.random.default_rng(es))
                      for c in range(self.BLINK_LEVELS)] for side, es in zip((-1, 1), eye_seeds)]
        self._jaw_setup()
        self.lip_noise = cv2.GaussianBlur(self.rng.standard_normal((1, R)).astype(np.float32), (0, 0), 0.8)[0] * 2

    # ---- static layers -------------------------------------------------------------------------------
    def _noise(self, sigma_px: float, shape=None) -> np.ndarray:
        """Seeded Gaussian noise blurred to `sigma_px`, normalised to unit std."""
        n = self.rng.standard_normal(shape or (self.size, self.size)).astype(np.float32)
        n = cv2.GaussianBlur(n, (0, 0), sigma_px)
        return n / (n.std() + 1e-8)

    def _background(self) -> np.ndarray:
        S, st, X, Y = self.size, self.style, self.X, self.Y
        wall = st.wall[None, None, :] * (1.05 - 0.25 * Y[..., None]) * (1 + 0.05 * (X[..., None] - 0.5))
        blobs = np.zeros((S, S), np.float32)
        for _ in range(9):  # out-of-focus lights and objects behind the speaker
            x0, y0, r = self.rng.uniform(0, 1), self.rng.uniform(0, 0.8), self.rng.uniform(0.03, 0.1)
            blobs += self.rng.uniform(-0.6, 1.0) * gauss(X, Y, x0, y0, 1.5 * r, 1.5 * r)
        shelf = smoothstep(0.005, -0.005, np.abs(Y - st.shelf_y) - 0.01) * (np.abs(X - 0.5) > 0.2)
        shelf = cv2.GaussianBlur(shelf.astype(np.float32), (0, 0), 0.012 * S)
        img = wall * (1 + 0.12 * blobs[..., None]) * (1 - 0.35 * shelf[..., None])
        img *= 1 + 0.02 * self._noise(0.03 * S)[..., None] + 0.012 * self._noise(0.6)[..., None]
        vignette = 1 - 0.3 * ((X - 0.5) ** 2 + (Y - 0.45) ** 2)
        return np.clip(img * vignette[..., None], 0, 1).astype(np.float32)

    def _torso(self) -> np.ndarray:
        S, st, X, Y = self.size, self.style, self.X, self.Y
        dx = X - 0.5
        ax = np.abs(dx)
        # Trapezius slope from the base of the neck to the shoulders, a crew neckline around the neck.
        shoulder = 0.845 + 0.1 * smoothstep(0.14, 0.5, ax) ** 0.8
        neckline = 0.845 + 0.06 * np.sqrt(np.clip(1 - (dx / 0.17) ** 2, 0, 1))
        body = smoothstep(-0.5 / S, 0.5 / S, Y - shoulder)
        body = body * np.maximum(smoothstep(-0.5 / S, 0.5 / S, Y - neckline), (ax >= 0.17).astype(np.float32))
        weave = 0.05 * self._noise(0.5) + 0.03 * np.sin(2 * np.pi * (X * S) / 2.5 + 2 * self._noise(3))
        folds = 0.06 * np.sin(2 * np.pi * (dx * 3.0 + 0.8 * Y) + 1.3) * smoothstep(0.15, 0.4, ax)
        light = 0.8 - 0.35 * dx - 0.2 * smoothstep(0.3, 0.5, ax)  # lit from the upper left, turning away
        rib = np.exp(-0.5 * ((Y - neckline - 0.008) * S / max(0.006 * S, 0.8)) ** 2) * (ax < 0.18)
        rib_tex = 1 + 0.08 * np.sin(2 * np.pi * X * S / 2.0)
        shade = light * (1 + weave + folds) * (1 - 0.25 * rib * rib_tex)
        shade *= 1 - 0.3 * np.exp(-((Y - neckline) * S / 1.5) ** 2) * (ax < 0.17)
        rgb = st.shirt[None, None, :] * shade[..., None]
        return np.concatenate([rgb * body[..., None], body[..., None]], -1).astype(np.float32)

    def _head(self) -> np.ndarray:
        S, st, g, X, Y, rng = self.R, self.style, self.geom, self.HX, self.HY, self.rng
        dx = X - g.cx
        hw = g.half_width(Y)
        face = np.clip((hw - np.abs(dx)) * S + 0.5, 0, 1) * (hw > 0)

        # Height field (units of S): an egg-shaped head plus the bumps and hollows of a face.
        nx = np.clip(dx / np.maximum(hw, 1e-3), -1, 1)
        vy = np.clip((Y - g.cy) / np.where(Y < g.cy, g.b_up, g.b_low), -1, 1)
        h = 0.16 * np.sqrt(np.clip(1 - nx ** 2, 0, 1)) * np.sqrt(np.clip(1 - 0.8 * vy ** 2, 0, 1))
        ridge = smoothstep(g.eye_y - 0.01, g.nose_y, Y) * smoothstep(g.nose_y + 0.02, g.nose_y - 0.01, Y)
        h += 0.022 * ridge * np.exp(-0.5 * (dx / 0.02) ** 2)
        h += 0.03 * gauss(X, Y, g.cx, g.nose_y, 0.02, 0.018)
        for s in (-1, 1):
            h += 0.015 * gauss(X, Y, g.cx + s * 0.032, g.nose_y + 0.012, 0.013, 0.011)
            h -= 0.022 * gauss(X, Y, g.cx + s * g.eye_dx, g.eye_y, 0.05, 0.032)
            h += 0.008 * gauss(X, Y, g.cx + s * 0.09, g.brow_y, 0.07, 0.018)
            h += 0.012 * gauss(X, Y, g.cx + s * 0.13, g.eye_y + 0.085, 0.05, 0.045)
            # Nasolabial fold: a crease from the nose wing towards the mouth corner.
            p0, p1 = np.array([g.cx + s * 0.045, g.nose_y + 0.02]), np.array([g.cx + s * 0.105, g.mouth_y + 0.02])
            d = _segment_distance(X, Y, p0, p1)
            h -= 0.0015 * np.exp(-0.5 * (d / 0.008) ** 2) * smoothstep(g.nose_y, g.nose_y + 0.03, Y)
        h += 0.01 * gauss(X, Y, g.cx, g.mouth_y - 0.01, 0.07, 0.015)
        h += 0.01 * gauss(X, Y, g.cx, g.mouth_y + 0.02, 0.06, 0.015)
        h -= 0.005 * gauss(X, Y, g.cx, g.mouth_y + 0.045, 0.045, 0.01)
        h -= 0.003 * gauss(X, Y, g.cx, g.nose_y + 0.035, 0.006, 0.012)
        h += 0.012 * gauss(X, Y, g.cx, g.chin_y - 0.035, 0.05, 0.03)

        # Pores: sparse dimples plus fine grain, stable (drawn once) and lit with the rest of the skin.
        pores = (rng.random((S, S)) < st.pore_density).astype(np.float32)
        pores = cv2.GaussianBlur(pores, (0, 0), 0.55)
        pores /= pores.max() + 1e-8
        grain = self._noise(0.7, (self.R, self.R))
        h += (-0.6 * pores + 0.25 * grain) * (0.17 / S)

        # Albedo: tone variation, redness, pores, freckles and a mole.
        albedo = st.skin[None, None, :] * (1 + 0.025 * self._noise(0.04 * S, (S, S)))[..., None]
        red = sum(gauss(X, Y, g.cx + s * 0.12, g.eye_y + 0.11, 0.045, 0.04) for s in (-1, 1))
        red = red + 0.8 * gauss(X, Y, g.cx, g.nose_y, 0.025, 0.02)
        albedo *= 1 + red[..., None] * np.array([0.04, -0.06, -0.06], np.float32)
        albedo *= (1 - 0.10 * pores - 0.03 * grain)[..., None]
        under_eye = sum(gauss(X, Y, g.cx + s * g.eye_dx, g.eye_y + 0.03, 0.035, 0.012) for s in (-1, 1))
        albedo *= (1 - 0.08 * under_eye)[..., None] * np.array([1, 0.98, 1.0], np.float32)
        where = gauss(X, Y, g.cx, g.nose_y - 0.03, 0.17, 0.07)
        n_freckles = int(st.freckle_count * (S / 256) ** 2)
        freckles = np.zeros((S, S), np.float32)
        for sigma in (0.6, 1.0):  # small and larger spots, as soft splats
            spots = np.zeros((S, S), np.float32)
            pts = rng.uniform([0.28, 0.42], [0.72, 0.66], size=(n_freckles * 2, 2))
            keep = rng.random(len(pts)) < where[(pts[:, 1] * S).astype(int), (pts[:, 0] * S).astype(int)]
            for x0, y0 in pts[keep]:
                spots[int(y0 * S), int(x0 * S)] += rng.uniform(0.4, 1.0)
            freckles += cv2.GaussianBlur(spots, (0, 0), sigma * max(S / 256, 0.7)) * (2 * np.pi * sigma ** 2)
        freckles = np.clip(freckles, 0, 1)
        albedo = albedo * (1 - freckles[..., None] * (1 - st.freckle_tint))
        nostrils = sum(gauss(X, Y, g.cx + s * 0.017, g.nose_y + 0.016, 0.0065, 0.0035) for s in (-1, 1))
        albedo *= (1 - 0.75 * np.clip(nostrils * 1.3, 0, 1))[..., None]
        mole_r = 0.006 * S
        mole = np.clip(1.2 - np.hypot((X - g.mole[0]) * S, (Y - g.mole[1]) * S) / mole_r, 0, 1) ** 0.7
        albedo = albedo * (1 - mole[..., None]) + mole[..., None] * np.array([0.28, 0.17, 0.12], np.float32)
        h += mole * (0.6 / S)
        crease = sum(np.exp(-0.5 * ((Y - (g.eye_y - 0.027 - 0.01 * (1 - ((X - g.cx - s * g.eye_dx) / 0.05) ** 2)))
                                    * S / 0.9) ** 2) * gauss(X, Y, g.cx + s * g.eye_dx, g.eye_y - 0.03, 0.03, 0.05)
                     for s in (-1, 1))
        albedo *= (1 - 0.25 * crease)[..., None]

        face_rgb = _shade(h, albedo, S, oil=0.6 * gauss(X, Y, g.cx, g.brow_y - 0.06, 0.1, 0.05)
                          + gauss(X, Y, g.cx, g.nose_y, 0.02, 0.03))
        head = np.zeros((S, S, 4), np.float32)

        # Neck and ears behind the face, then the face, eyebrows and hair.
        ndx = dx / 0.14
        neck = np.clip((0.14 - np.abs(dx)) * S + 0.5, 0, 1) * (Y > g.cy)
        neck_h = 0.1 * np.sqrt(np.clip(1 - ndx ** 2, 0, 1))
        neck_rgb = _shade(neck_h, st.skin[None, None, :] * 0.92 * (1 + 0.02 * grain)[..., None], S)
        chin_shadow = 1 - 0.55 * smoothstep(g.chin_y + 0.09, g.chin_y - 0.01, Y)
        over(head, neck_rgb * chin_shadow[..., None], neck)
        for s in (-1, 1):
            ex, ey = g.cx + s * (g.half_width(np.float32(g.ear_y)) - 0.005), g.ear_y
            ear = np.clip((1 - (((X - ex) / 0.036) ** 2 + ((Y - ey) / 0.062) ** 2)) * 10, 0, 1)
            concha = gauss(X, Y, ex + s * 0.004, ey + 0.005, 0.01, 0.025)
            ear_rgb = st.skin * np.array([1.0, 0.9, 0.88], np.float32) * (0.8 - 0.35 * concha[..., None])
            over(head, ear_rgb, ear)
        over(head, face_rgb, face)
        over(head, st.hair * 0.6, self._brows() * 0.8)
        over(head, *self._hair(hw))
        return head

    def _brows(self) -> np.ndarray:
        g, S, rng = self.geom, self.R, self.rng
        n = int(170 * max(S / 256, 0.5))
        strokes = []
        for s in (-1, 1):
            t = rng.uniform(0, 1, n) ** 1.3  # 0 at the inner end, 1 at the outer tail; denser inside
            x = g.cx + s * (0.035 + 0.125 * t)
            y = g.brow_y + 0.045 * (t - 0.6) ** 2 - 0.012 + rng.uniform(-0.5, 0.5, n) * 0.013 * (1 - 0.6 * t)
            # Inner hairs grow upwards, the body outwards, the tail outwards and down along the arch.
            ang = -(1.2 * (1 - t) ** 2 + 0.25 - 0.6 * np.maximum(t - 0.6, 0)) + rng.normal(0, 0.12, n)
            ang = ang if s > 0 else np.pi - ang
            strokes.extend(curves(x, y, ang, rng.uniform(0.008, 0.014, n), np.full(n, s * 0.25), 3))
        return np.clip(1.2 * draw_strokes(S, strokes, thickness=0.5, scale=4), 0, 1)

    def _hair(self, hw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g, st, S, X, Y, rng = self.geom, self.style, self.R, self.HX, self.HY, self.rng
        dx = X - g.cx
        theta = np.arctan2(Y - g.cy, dx)
        bumps = sum(rng.uniform(0.004, 0.012) * np.sin(k * theta + rng.uniform(0, 2 * np.pi)) for k in (5, 9, 14))
        inside = ((dx / 0.258) ** 2 + ((Y - g.cy + 0.02) / (g.b_up + 0.03)) ** 2) < (1 + bumps) ** 2
        hairline = g.hairline_y + 0.11 * (dx / 0.2) ** 2 + 0.006 * self._noise(1.5, (S, S))
        outside_face = np.abs(dx) > hw - 0.012
        mask = inside & ((Y < hairline) | outside_face) & (Y < g.ear_y - 0.02 + 0.01 * self._noise(2, (S, S)))
        soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.8)
        # Strands combed sideways away from the parting, falling more steeply over the sides of the head.
        ys, xs = np.nonzero(mask)
        n = int(st.strand_count * (S / 256) ** 2) if len(ys) else 0
        idx = rng.integers(max(len(ys), 1), size=n)
        x, y = (xs[idx] + rng.random(n)) / S, (ys[idx] + rng.random(n)) / S
        side = np.where(x > g.part_x, 1.0, -1.0)
        down = 0.15 + 2.5 * np.maximum(0.0, y - 0.26) + 1.5 * np.maximum(0.0, np.abs(x - g.cx) - 0.17)
        ang = np.arctan2(down, side) + rng.normal(0, 0.1, n)
        strokes = curves(x, y, ang, rng.uniform(0.02, 0.06, n), side * rng.uniform(0.0, 0.8, n), 6)
        values = rng.uniform(0.35, 1.9, n)
        tex = draw_strokes(S, strokes, thickness=0.45, scale=2, values=values, base=1.0)
        cover = draw_strokes(S, strokes, thickness=0.45, scale=2)
        shade = 0.55 + 0.45 * np.clip(1 - ((X - g.cx + 0.08) / 0.3) ** 2 - ((Y - 0.15) / 0.3) ** 2, 0, 1)
        sheen = 0.5 * np.exp(-0.5 * ((Y - 0.19 - 0.6 * dx ** 2) / 0.03) ** 2) * (1 - 0.5 * np.tanh(dx / 0.1))
        rgb = st.hair[None, None, :] * (tex * shade)[..., None] + (sheen * tex)[..., None] * (st.hair + 0.08)
        near = cv2.GaussianBlur(cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(np.float32),
                                (0, 0), 1.0)
        # Thinning towards the hairline: single strands over skin instead of a hard edge.
        density = np.where(outside_face, 1.0, smoothstep(hairline, hairline - 0.025, Y))
        alpha = np.maximum(soft * density, np.clip(cover * 1.2, 0, 1) * near)
        return np.clip(rgb, 0, 1).astype(np.float32), alpha.astype(np.float32)

    # ---- per frame -----------------------------------------------------------------------------------
    def _jaw_setup(self) -> None:
        g, S = self.geom, self.R
        y0, y1 = int((g.mouth_y - 0.02) * S), min(S, int((g.chin_y + 0.1) * S))
        x0, x1 = int((g.cx - 0.26) * S), int(np.ceil((g.cx + 0.26) * S))
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        X, Y = (xs + 0.5) / S, (ys + 0.5) / S
        wx = np.exp(-0.5 * ((X - g.cx) / 0.12) ** 2)
        wy = smoothstep(g.mouth_y - 0.01, g.mouth_y + 0.05, Y) * smoothstep(g.chin_y + 0.09, g.chin_y, Y)
        self._jaw = (slice(y0, y1), slice(x0, x1), xs, ys, (wx * wy).astype(np.float32))

    def jaw_drop_px(self, openness: float) -> float:
        return 0.7 * float(openness) * self.geom.mouth_open * self.R

    def canonical(self, openness: float, blink: float) -> np.ndarray:
        """The head layer, premultiplied RGBA float32 (R,R,4) on the head canvas, before the head motion."""
        head = self.head_pm.copy()
        sy, sx, xs, ys, w = self._jaw
        drop = self.jaw_drop_px(openness)
        if drop > 0.01:
            head[sy, sx] = cv2.remap(self.head_pm, xs, ys - drop * w, cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_CONSTANT)
        level = int(round(np.clip(blink, 0, 1) * (self.BLINK_LEVELS - 1)))
        mouth = mouth_patch(self.R, self.geom, self.style, float(openness), self.lip_noise)
        for (py, px), patch in (self.eyes[0][level], self.eyes[1][level], mouth):
            region = head[py:py + patch.shape[0], px:px + patch.shape[1]]
            region *= 1 - patch[..., 3:4]
            region += patch
        return head

    def render(self, openness: float, blink: float, affine: np.ndarray) -> np.ndarray:
        """One frame uint8 (S,S,3) RGB; `affine` (2,3) maps head-canvas pixels to frame pixels (`pose`)."""
        S = self.size
        head = cv2.warpAffine(self.canonical(openness, blink), np.asarray(affine, np.float64), (S, S),
                              flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT)
        # background, head over it, torso over both: ((bg (1-a) + head) (1-t) + torso), regrouped so
        # that only the head-dependent part is computed per frame.
        img = cv2.multiply(head[..., :3] - self._bg_kept * head[..., 3:4], self._kept)
        img += self._bg_torso
        return cv2.convertScaleAbs(np.maximum(img, 0, out=img), alpha=255.0)

    def pose(self, dx: float, dy: float, scale: float, roll_deg: float) -> np.ndarray:
        """Affine (2,3) float64, head canvas -> frame pixels: shift (fractions of the frame), scale and roll
        about the base of the neck."""
        S, R = self.size, self.R
        ax, ay = self.ANCHOR
        pivot = np.array([0.5 * S, 0.72 * S])
        c, s = np.cos(np.radians(roll_deg)) * scale, np.sin(np.radians(roll_deg)) * scale
        lin = np.array([[c, -s], [s, c]])
        base = np.array([ax * (S - R), ay * (S - R)])  # canvas -> frame at rest
        shift = lin @ (base - pivot) + pivot + np.array([dx * S, dy * S])
        return np.concatenate([lin, shift[:, None]], 1)

    def face_box(self, openness: float, affine: np.ndarray) -> np.ndarray:
        """Face box float32 [x1,y1,x2,y2] in frame pixels: just above the brows to the chin, cheek to cheek."""
        g, S = self.geom, self.R
        half = float(g.half_width(np.float32(g.eye_y + 0.06)))
        x1, x2 = (g.cx - half) * S, (g.cx + half) * S
        y1, y2 = (g.brow_y - 0.035) * S, g.chin_y * S + self.jaw_drop_px(openness)
        corners = np.array([[x1, y1, 1], [x2, y1, 1], [x1, y2, 1], [x2, y2, 1]], np.float64)
        p = corners @ np.asarray(affine, np.float64).T
        return np.array([p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()], np.float32)


def _shade(h: np.ndarray, albedo: np.ndarray, S: int, oil: np.ndarray | float = 0.0) -> np.ndarray:
    """Lambert + Blinn-Phong shading of a height field (units of S) lit from the upper left."""
    hy, hx = np.gradient(h * S)
    n = np.stack([-hx, -hy, np.ones_like(h)], -1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    light = np.array([-0.45, -0.55, 0.70], np.float32)
    light /= np.linalg.norm(light)
    half = light + np.array([0, 0, 1], np.float32)
    half /= np.linalg.norm(half)
    diffuse = np.clip(n @ light, 0, 1)
    spec = np.clip(n @ half, 0, 1) ** 30 * (0.08 + 0.25 * np.asarray(oil))
    shade = 0.35 + 0.75 * diffuse
    # Skin scatters red light into its shadows: darker regions keep more red.
    tint = np.stack([shade ** 0.8, shade, shade ** 1.1], -1)
    return np.clip(albedo * tint + spec[..., None], 0, 1).astype(np.float32)


def _segment_distance(X: np.ndarray, Y: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    d = p1 - p0
    t = np.clip(((X - p0[0]) * d[0] + (Y - p0[1]) * d[1]) / (d @ d), 0, 1)
    return np.hypot(X - p0[0] - t * d[0], Y - p0[1] - t * d[1])
