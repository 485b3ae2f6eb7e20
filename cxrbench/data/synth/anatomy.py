"""Chest anatomy of the synthetic images, and the region boxes derived from it.

Everything is defined in normalised image coordinates ``(u, v)`` in ``[0, 1]`` (u to the right
of the viewer, v down) for an upright frontal PA view, *radiological convention*: the patient's
right lung is on the image's left. A :class:`Pose` (small scale/rotation/shift, drawn per image)
maps it to pixels. The same shapes are drawn by :mod:`.render` and measured here for the region
boxes, so every box of the release describes structures that are really in the picture.

Patient traits (body width, lung height, heart size, diaphragm heights, rib spacing) vary per
patient; findings change the anatomy itself where that is the finding (cardiomegaly widens the
heart, mediastinal widening the mediastinum, low lung volumes raise the diaphragm, a fracture
breaks a rib, effusions/pneumothoraces are drawn on top by :mod:`.render`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageDraw

from cxrbench.data.synth.lexicon import ORDINALS, REGIONS, SIDES

Box = tuple[float, float, float, float]
GRID = 192  # resolution of the masks the region boxes are measured on (normalised space)


@dataclass(frozen=True)
class Traits:
    """Per-patient body shape (constant over the patient's studies)."""

    body_half_width: float = 0.43
    lung_top: float = 0.13
    lung_lateral: float = 0.10
    dome_right: float = 0.69
    dome_left: float = 0.72
    heart_half_width: float = 0.17
    heart_center_v: float = 0.61
    rib_spacing: float = 0.046
    mediastinum_half_width: float = 0.062

    @staticmethod
    def sample(rng: np.random.Generator) -> "Traits":
        return Traits(
            body_half_width=float(rng.uniform(0.40, 0.46)),
            lung_top=float(rng.uniform(0.11, 0.15)),
            lung_lateral=float(rng.uniform(0.085, 0.12)),
            dome_right=float(rng.uniform(0.66, 0.72)),
            dome_left=float(rng.uniform(0.69, 0.75)),
            heart_half_width=float(rng.uniform(0.155, 0.18)),
            heart_center_v=float(rng.uniform(0.59, 0.63)),
            rib_spacing=float(rng.uniform(0.043, 0.049)),
            mediastinum_half_width=float(rng.uniform(0.055, 0.068)),
        )


@dataclass(frozen=True)
class Modifiers:
    """How the study's findings change the anatomy itself (1.0 / 0.0 = unchanged)."""

    heart_scale: float = 1.0          # cardiomegaly: > 1.18 gives a cardiothoracic ratio > 0.5
    mediastinum_scale: float = 1.0    # mediastinal widening
    dome_raise: float = 0.0           # low lung volumes (both domes up)
    rotation_shift: float = 0.0       # patient rotation: mediastinum off the body midline
    ap_magnification: float = 1.0     # AP view: the heart is further from the detector
    # rib fractures: (side, rib number 1-12, position along the rib in [0.2, 0.8])
    fractures: tuple[tuple[str, int, float], ...] = ()


@dataclass(frozen=True)
class Pose:
    """Per-image affine jitter: pixel = size * (s R(theta) (p - c) + c + t)."""

    scale: float = 1.0
    theta: float = 0.0  # radians
    tx: float = 0.0
    ty: float = 0.0

    @staticmethod
    def sample(rng: np.random.Generator) -> "Pose":
        return Pose(scale=float(rng.uniform(0.93, 1.04)), theta=float(np.deg2rad(rng.uniform(-3, 3))),
                    tx=float(rng.uniform(-0.03, 0.03)), ty=float(rng.uniform(-0.025, 0.025)))

    def matrix(self) -> np.ndarray:
        c, s = math.cos(self.theta), math.sin(self.theta)
        return self.scale * np.array([[c, -s], [s, c]])

    def _coef(self) -> tuple[float, float, float, float]:
        c, s = math.cos(self.theta) * self.scale, math.sin(self.theta) * self.scale
        return c, s, 0.5 + self.tx, 0.5 + self.ty

    def apply(self, pts: np.ndarray, size: int) -> np.ndarray:
        """Normalised points (N, 2) -> pixel coordinates (N, 2)."""
        c, s, ox, oy = self._coef()
        p = np.asarray(pts, dtype=np.float64)
        x, y = p[:, 0] - 0.5, p[:, 1] - 0.5
        return np.stack([size * (c * x - s * y + ox), size * (s * x + c * y + oy)], 1)

    def inverse_grid(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Normalised (u, v) of every pixel centre, for drawing smooth fields."""
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
        q = np.stack([(xs + 0.5) / size - 0.5 - self.tx, (ys + 0.5) / size - 0.5 - self.ty], -1)
        inv = np.linalg.inv(self.matrix()).astype(np.float32)
        p = q @ inv.T + 0.5
        return p[..., 0], p[..., 1]

    def box(self, box: Box, size: int) -> Box:
        """Pixel box enclosing the transformed normalised box, clipped to the image."""
        c, s, ox, oy = self._coef()
        x1, y1, x2, y2 = (v - 0.5 for v in box)
        xs = [size * (c * x - s * y + ox) for x, y in ((x1, y1), (x2, y1), (x1, y2), (x2, y2))]
        ys = [size * (s * x + c * y + oy) for x, y in ((x1, y1), (x2, y1), (x1, y2), (x2, y2))]
        lo_x, lo_y = min(max(min(xs), 0.0), size), min(max(min(ys), 0.0), size)
        hi_x, hi_y = min(max(max(xs), 0.0), size), min(max(max(ys), 0.0), size)
        return (round(lo_x, 1), round(lo_y, 1), round(hi_x, 1), round(hi_y, 1))


def mirror(pts: np.ndarray) -> np.ndarray:
    """Reflect normalised points about the vertical midline (patient right <-> left)."""
    out = np.array(pts, dtype=np.float64, copy=True)
    out[:, 0] = 1.0 - out[:, 0]
    return out


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


@dataclass
class FrontalAnatomy:
    """Shapes of one frontal study in normalised coordinates (see the module docstring)."""

    traits: Traits
    mods: Modifiers = field(default_factory=Modifiers)

    # ---- derived scalar geometry
    @property
    def cx(self) -> float:
        return 0.5 + self.mods.rotation_shift

    def dome(self, side: str) -> float:
        d = self.traits.dome_right if side == "right" else self.traits.dome_left
        return d - self.mods.dome_raise

    def cp_angle_v(self, side: str) -> float:
        return self.dome(side) + 0.085

    def _x(self, side: str, x: float) -> float:
        """x measured from the image's left edge for the patient's right side, mirrored for left."""
        return x if side == "right" else 1.0 - x

    # ---- outlines
    def body(self) -> np.ndarray:
        t = self.traits
        hw = t.body_half_width
        pts = [(0.5 - 0.07, 0.0), (0.5 - 0.075, 0.06), (0.5 - hw + 0.05, 0.085), (0.5 - hw - 0.035, 0.12),
               (0.5 - hw - 0.01, 0.30), (0.5 - hw + 0.005, 0.62), (0.5 - hw + 0.02, 1.0)]
        right = np.array(pts)
        return np.concatenate([right, mirror(right)[::-1]])

    def lung(self, side: str) -> np.ndarray:
        """Lung field polygon (patient side), apex to costophrenic angle to the medial border."""
        t, cx = self.traits, self.cx
        top, lat, dome, cp = t.lung_top, t.lung_lateral, self.dome(side), self.cp_angle_v(side)
        med = 0.5 - 0.058 if side == "right" else 0.5 - 0.066
        pts_r = [
            (med, top + 0.06), (0.5 - 0.135, top + 0.005), (0.5 - 0.20, top - 0.003), (lat + 0.07, top + 0.045),
            (lat + 0.02, top + 0.16), (lat, 0.45), (lat + 0.002, cp - 0.10), (lat + 0.012, cp),
            (lat + 0.05, cp - 0.035), (lat + 0.11, dome + 0.005), (0.5 - 0.23, dome - 0.01),
            (0.5 - 0.15, dome + 0.012), (0.5 - 0.09, dome + 0.045), (med + 0.004, dome + 0.03), (med, 0.42),
        ]
        pts = np.array(pts_r)
        pts[:, 0] += cx - 0.5
        if side == "left":
            pts = mirror(pts)
            pts[:, 0] += 2 * (cx - 0.5)
        return pts

    def heart(self) -> np.ndarray:
        t, m = self.traits, self.mods
        hw = t.heart_half_width * m.heart_scale * m.ap_magnification
        hh = 0.115 * (1 + 0.4 * (m.heart_scale - 1)) * m.ap_magnification
        # asymmetric: 2/3 of the heart lies to the patient's left (image right)
        c = self.cx + 0.33 * hw * 0.55
        pts = _ellipse(c, t.heart_center_v, hw, hh)
        pts[:, 1] = np.minimum(pts[:, 1], self.dome("left") + 0.04)
        return pts

    def heart_box_core(self) -> Box:
        pts = self.heart()
        return (*pts.min(0), *pts.max(0))  # type: ignore[return-value]

    def mediastinum(self) -> np.ndarray:
        t, m = self.traits, self.mods
        hw = t.mediastinum_half_width * m.mediastinum_scale
        cx = self.cx
        hv = t.heart_center_v - 0.09
        pts = [(cx - hw * 0.8, 0.09), (cx + hw * 0.8, 0.09), (cx + hw * 1.05, 0.25), (cx + hw * 1.15, hv),
               (cx - hw * 1.1, hv), (cx - hw * 1.0, 0.25)]
        return np.array(pts)

    def trachea(self) -> tuple[np.ndarray, float]:
        """Trachea centre line (top to carina) and half width."""
        cx = self.cx
        return np.array([[cx - 0.002, 0.0], [cx + 0.004, self.carina_v]]), 0.017

    @property
    def carina_v(self) -> float:
        return self.traits.lung_top + 0.235

    def bronchus(self, side: str) -> np.ndarray:
        sx = -1 if side == "right" else 1
        c = np.array([self.cx + 0.004, self.carina_v])
        return np.array([c, c + [sx * 0.045, 0.04], c + [sx * 0.085, 0.065]])

    def hilum(self, side: str) -> tuple[float, float]:
        sx = -1 if side == "right" else 1
        return self.cx + sx * 0.105, self.carina_v + 0.075 + (0.01 if side == "left" else 0.0)

    def aortic_knob(self) -> tuple[float, float, float]:
        return self.cx + 0.055 * self.mods.mediastinum_scale, self.traits.lung_top + 0.15, 0.034

    def spine_x(self) -> tuple[float, float]:
        return 0.5 - 0.036, 0.5 + 0.036

    def vertebra_v(self) -> dict[str, tuple[float, float]]:
        """Vertical extent of each vertebra: C6, C7, T1..T12, L1..L3."""
        names = ["C6", "C7"] + [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 4)]
        h = (self.dome("left") + 0.06 - (self.traits.lung_top - 0.02)) / 12
        start = self.traits.lung_top - 0.02 - 2 * h
        return {n: (start + i * h, start + (i + 1) * h - 0.15 * h) for i, n in enumerate(names)}

    def rib(self, side: str, k: int, part: str = "posterior") -> np.ndarray:
        """Centre line of rib ``k`` (1-12). Posterior ribs run from the spine laterally and curve
        down; anterior ribs (1-6) from the lateral chest wall medially and down."""
        cache = self.__dict__.setdefault("_rib_cache", {})
        key = (side, k, part, self.mods.rotation_shift)
        if key not in cache:
            cache[key] = self._rib(side, k, part)
        return cache[key]

    def _rib(self, side: str, k: int, part: str) -> np.ndarray:
        t = self.traits
        v0 = t.lung_top + 0.005 + (k - 1) * t.rib_spacing
        lat = t.lung_lateral - 0.012
        if part == "posterior":
            s = np.linspace(0, 1, 24)
            width = (0.5 - 0.04 - lat) * (0.55 + 0.45 * min(1.0, k / 4))
            x = (0.5 - 0.04) - width * s
            y = v0 - 0.035 * np.sin(np.pi * s * 0.7) + 0.075 * s ** 3
        else:
            s = np.linspace(0, 1, 18)
            x = lat + 0.01 + (0.5 - 0.14 - lat) * s
            y = v0 + 0.06 + 0.045 * s + 0.02 * (1 - (1 - s) ** 2)
        pts = np.stack([x, y], 1)
        pts[:, 0] += self.cx - 0.5
        return pts if side == "right" else mirror(pts) + [2 * (self.cx - 0.5), 0]

    @property
    def rib_half_thickness(self) -> float:
        return 0.0075

    def clavicle(self, side: str) -> np.ndarray:
        t = self.traits
        s = np.linspace(0, 1, 20)
        x = 0.5 - 0.035 - (0.5 - 0.035 - (0.5 - t.body_half_width + 0.02)) * s
        y = t.lung_top + 0.035 - 0.05 * s + 0.012 * np.sin(2 * np.pi * s)
        pts = np.stack([x, y], 1)
        return pts if side == "right" else mirror(pts)

    def scapula(self, side: str) -> np.ndarray:
        t = self.traits
        x0 = 0.5 - t.body_half_width
        pts = np.array([[x0 + 0.02, t.lung_top - 0.01], [x0 + 0.10, t.lung_top + 0.02], [x0 + 0.035, t.lung_top + 0.23]])
        return pts if side == "right" else mirror(pts)

    def humeral_head(self, side: str) -> tuple[float, float, float]:
        t = self.traits
        x = 0.5 - t.body_half_width - 0.02
        return (x if side == "right" else 1 - x), t.lung_top - 0.005, 0.045

    def stomach_bubble(self) -> np.ndarray:
        d = self.dome("left")
        return _ellipse(self.cx + 0.16, d + 0.065, 0.055, 0.03)

    def esophagus_line(self) -> np.ndarray:
        cx = self.cx
        return np.array([[cx + 0.004, 0.02], [cx + 0.01, 0.35], [cx + 0.02, 0.55], [cx + 0.04, self.dome("left") + 0.02],
                         [cx + 0.13, self.dome("left") + 0.07]])


# ----------------------------------------------------------------------------------------------
# region boxes


def _raster(polys: list[np.ndarray], grid: int = GRID) -> np.ndarray:
    img = Image.new("1", (grid, grid), 0)
    draw = ImageDraw.Draw(img)
    for p in polys:
        draw.polygon([tuple(map(float, q)) for q in np.asarray(p) * grid], fill=1)
    return np.asarray(img, dtype=bool)


def _mbox(mask: np.ndarray, u0: float = 0, u1: float = 1, v0: float = 0, v1: float = 1) -> Box | None:
    """Normalised bbox of ``mask`` restricted to the window [u0,u1] x [v0,v1]."""
    g = mask.shape[0]
    a, b = max(0, int(u0 * g)), min(g, int(math.ceil(u1 * g)))
    c, d = max(0, int(v0 * g)), min(g, int(math.ceil(v1 * g)))
    sub = mask[c:d, a:b]
    if not sub.any():
        return None
    cols = np.flatnonzero(sub.any(0))
    rows = np.flatnonzero(sub.any(1))
    return ((a + cols[0]) / g, (c + rows[0]) / g, (a + cols[-1] + 1) / g, (c + rows[-1] + 1) / g)


def _pbox(pts: np.ndarray, pad: float = 0.0) -> Box:
    p = np.asarray(pts)
    return (float(p[:, 0].min() - pad), float(p[:, 1].min() - pad), float(p[:, 0].max() + pad), float(p[:, 1].max() + pad))


def union(*boxes: Box | None) -> Box:
    bs = [b for b in boxes if b is not None]
    return (min(b[0] for b in bs), min(b[1] for b in bs), max(b[2] for b in bs), max(b[3] for b in bs))


def frac(box: Box, fx0: float, fy0: float, fx1: float, fy1: float) -> Box:
    """Sub-box by fractions of ``box`` (fx measured from the box's left edge in the image)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    return (x1 + fx0 * w, y1 + fy0 * h, x1 + fx1 * w, y1 + fy1 * h)


def side_frac(box: Box, side: str, lat0: float, fy0: float, lat1: float, fy1: float) -> Box:
    """Sub-box by fractions measured from the *lateral* edge of a one-sided structure
    (lat0=0 is the lateral edge): mirrored for the patient's left (image right)."""
    if side == "right":
        return frac(box, lat0, fy0, lat1, fy1)
    return frac(box, 1 - lat1, fy0, 1 - lat0, fy1)


def _clip(box: Box) -> Box:
    x1, y1, x2, y2 = box
    return (max(0.0, x1), max(0.0, y1), min(1.0, x2), min(1.0, y2))


def frontal_region_boxes(a: FrontalAnatomy) -> dict[str, Box]:
    """Normalised box of every localisable region of the lexicon on a frontal view."""
    B: dict[str, Box] = {}
    lungs = {s: _raster([a.lung(s)]) for s in SIDES}
    B["heart"] = _pbox(a.heart())
    hx1, hy1, hx2, hy2 = B["heart"]
    med = _pbox(a.mediastinum())
    B["mediastinum"] = union(med, (med[0], med[1], med[2], hy1 + 0.03))
    body = _pbox(a.body())
    for s in SIDES:
        L = lungs[s]
        lb = _mbox(L)
        assert lb is not None
        B[f"{s} lung"] = lb
        top, bot = lb[1], lb[3]
        h = bot - top
        B[f"{s} upper lung zone"] = _mbox(L, v0=top, v1=top + h / 3)
        B[f"{s} mid lung zone"] = _mbox(L, v0=top + h / 3, v1=top + 2 * h / 3)
        B[f"{s} lower lung zone"] = _mbox(L, v0=top + 2 * h / 3)
        B[f"{s} lung apex"] = _mbox(L, v1=top + 0.09)
        B[f"{s} lung base"] = _mbox(L, v0=a.dome(s) - 0.035)
        fiss = top + 0.42 * h
        B[f"{s} upper lung lobe"] = _mbox(L, v1=fiss if s == "right" else top + 0.58 * h)
        B[f"{s} lower lung lobe"] = _mbox(L, v0=top + 0.40 * h)
        hu, hv = a.hilum(s)
        medial = (lambda b, f, s=s: side_frac(b, s, 1 - f, 0, 1, 1))  # the medial fraction f of a box
        B[f"{s} perihilar region"] = medial(_mbox(L, v0=hv - 0.08, v1=hv + 0.08), 0.55)
        B[f"{s} suprahilar region"] = medial(_mbox(L, v0=hv - 0.17, v1=hv - 0.04), 0.6)
        B[f"{s} infrahilar region"] = medial(_mbox(L, v0=hv + 0.04, v1=hv + 0.17), 0.6)
        B[f"{s} hilar structures"] = _clip((hu - 0.045, hv - 0.06, hu + 0.045, hv + 0.06))
        B[f"{s} major fissure"] = side_frac(lb, s, 0.15, 0.30, 0.85, 0.85)
        cpv = a.cp_angle_v(s)
        B[f"{s} costophrenic angle"] = side_frac(_mbox(L, v0=cpv - 0.09), s, 0.0, 0.0, 0.42, 1.0)
        B[f"{s} cardiophrenic angle"] = side_frac(_mbox(L, v0=a.dome(s) - 0.02), s, 0.62, 0.0, 1.0, 1.0)
        B[f"{s} pleura"] = _clip(union(lb, (lb[0] - 0.012, lb[1] - 0.012, lb[2] + 0.012, lb[3] + 0.012)))
        B[f"{s} pleural space"] = B[f"{s} pleura"]
        B[f"{s} apical pleura"] = frac(B[f"{s} pleura"], 0, 0, 1, 0.18)
        B[f"{s} lateral pleura"] = side_frac(B[f"{s} pleura"], s, 0, 0.1, 0.2, 0.95)
        hemi = side_frac((body[0], lb[1] - 0.02, body[2], lb[3] + 0.01), s, 0, 0, 0.5, 1)
        B[f"{s} hemithorax"] = union(hemi, lb)
        B[f"{s} upper hemithorax"] = frac(B[f"{s} hemithorax"], 0, 0, 1, 0.5)
        B[f"{s} lower hemithorax"] = frac(B[f"{s} hemithorax"], 0, 0.5, 1, 1)
        d = a.dome(s)
        dx = side_frac(lb, s, 0.0, 0, 1.0, 1)
        B[f"{s} hemidiaphragm"] = (dx[0], d - 0.035, dx[2], a.cp_angle_v(s) + 0.02)
        B[f"{s} subdiaphragmatic region"] = (dx[0], d + 0.02, dx[2], min(1.0, d + 0.16))
        B[f"{s} upper abdomen"] = B[f"{s} subdiaphragmatic region"]
        # ribs and intercostal spaces
        for k in range(1, 13):
            o = ORDINALS[k - 1]
            post = _pbox(a.rib(s, k, "posterior"), a.rib_half_thickness)
            B[f"{s} {o} posterior rib"] = _clip(post)
            if k <= 6:
                B[f"{s} {o} anterior rib"] = _clip(_pbox(a.rib(s, k, "anterior"), a.rib_half_thickness))
                B[f"{s} {o} rib"] = union(post, B[f"{s} {o} anterior rib"])
            else:
                B[f"{s} {o} rib"] = _clip(post)
        for k in range(1, 11):
            r1, r2 = a.rib(s, k), a.rib(s, k + 1)
            lo = _pbox(np.concatenate([r1, r2]))
            B[f"{s} {ORDINALS[k - 1]} intercostal space"] = _clip(
                side_frac((lo[0], r1[:, 1].mean(), lo[2], r2[:, 1].mean()), s, 0.05, 0, 0.85, 1))
        B[f"{s} ribs"] = union(*(B[f"{s} {o} rib"] for o in ORDINALS))
        B[f"{s} clavicle"] = _clip(_pbox(a.clavicle(s), 0.012))
        B[f"{s} scapula"] = _clip(_pbox(a.scapula(s)))
        hxh, hyh, hr = a.humeral_head(s)
        B[f"{s} humerus"] = _clip((hxh - hr, hyh - hr, hxh + hr, min(1.0, hyh + 0.3)))
        B[f"{s} shoulder"] = _clip(union(B[f"{s} humerus"], side_frac(B[f"{s} clavicle"], s, 0, 0, 0.35, 1)))
        B[f"{s} acromioclavicular joint"] = side_frac(B[f"{s} clavicle"], s, 0, 0, 0.2, 1)
        B[f"{s} glenohumeral joint"] = _clip((hxh - 0.03, hyh - 0.03, hxh + 0.04, hyh + 0.04))
        B[f"{s} sternoclavicular joint"] = side_frac(B[f"{s} clavicle"], s, 0.82, 0, 1.0, 1)
        # the upper anterior chest wall, where pacemakers and ports sit
        B[f"{s} chest wall"] = side_frac((body[0], 0.1, body[2], 0.42), s, 0, 0, 0.36, 1)
        B[f"{s} breast"] = side_frac((body[0], 0.45, body[2], 0.8), s, 0.02, 0, 0.3, 1)
        B[f"{s} axilla"] = side_frac((body[0], 0.14, body[2], 0.32), s, 0, 0, 0.14, 1)
        B[f"{s} supraclavicular region"] = side_frac((0.5 - 0.32, 0.02, 0.5 + 0.32, a.traits.lung_top + 0.02), s, 0.2, 0, 0.85, 1)
        # vessels
        c = a.cx
        sx = -1 if s == "right" else 1
        B[f"{s} brachiocephalic vein"] = _clip(union((c + sx * 0.015, 0.13, c + sx * 0.07, 0.24)))
        B[f"{s} subclavian vein"] = _clip(union((c + sx * 0.05, 0.13, c + sx * 0.22, 0.18)))
        B[f"{s} internal jugular vein"] = _clip(union((c + sx * 0.03, 0.0, c + sx * 0.08, 0.15)))
        B[f"{s} pulmonary artery"] = _clip((hu - 0.035, hv - 0.04, hu + 0.035, hv + 0.03))
        B[f"{s} paratracheal region"] = _clip(union((c + sx * 0.018, 0.10, c + sx * 0.05, a.carina_v)))
        B[f"{s} main bronchus"] = _clip(_pbox(a.bronchus(s), 0.012))
        B[f"{s} heart border"] = side_frac(B["heart"], s, 0, 0.1, 0.22, 0.95)
        for box_name in (f"{s} subclavian vein", f"{s} brachiocephalic vein", f"{s} internal jugular vein",
                         f"{s} paratracheal region"):
            x1, y1, x2, y2 = B[box_name]
            B[box_name] = (min(x1, x2), y1, max(x1, x2), y2)

    # bilateral groups
    B["lungs"] = union(B["left lung"], B["right lung"])
    B["lung apices"] = union(B["left lung apex"], B["right lung apex"])
    B["lung bases"] = union(B["left lung base"], B["right lung base"])
    B["pleura"] = union(B["left pleura"], B["right pleura"])
    B["diaphragm"] = union(B["left hemidiaphragm"], B["right hemidiaphragm"])
    B["ribs"] = union(B["left ribs"], B["right ribs"])
    # right middle lobe and lingula: medial mid-lower; segments: fractions of their lobe
    rl, ll = B["right lung"], B["left lung"]
    B["right middle lung lobe"] = side_frac((rl[0], rl[1] + 0.40 * (rl[3] - rl[1]), rl[2], rl[1] + 0.78 * (rl[3] - rl[1])), "right", 0.1, 0, 1.0, 1)
    B["lingula"] = side_frac((ll[0], ll[1] + 0.48 * (ll[3] - ll[1]), ll[2], ll[1] + 0.82 * (ll[3] - ll[1])), "left", 0.15, 0, 1.0, 1)
    B["minor fissure"] = frac(B["right lung"], 0.25, 0.38, 1.0, 0.46)
    B["retrocardiac region"] = (max(hx1, a.cx), hy1 + 0.35 * (hy2 - hy1), hx2 - 0.02, hy2)
    seg = {  # (lateral0, y0, lateral1, y1) fractions of the lobe box
        "apical": (0.25, 0, 1.0, 0.45), "posterior": (0, 0.2, 0.6, 0.75), "anterior": (0.2, 0.45, 1.0, 1.0),
        "lateral": (0, 0, 0.6, 1.0), "medial": (0.4, 0, 1.0, 1.0), "superior": (0.1, 0, 0.9, 0.4),
        "medial basal": (0.6, 0.45, 1.0, 1.0), "anterior basal": (0.3, 0.5, 0.8, 1.0),
        "lateral basal": (0, 0.45, 0.45, 1.0), "posterior basal": (0.15, 0.6, 0.85, 1.0),
        "apicoposterior": (0.1, 0, 1.0, 0.5), "superior lingular": (0, 0, 1.0, 0.55),
        "inferior lingular": (0, 0.45, 1.0, 1.0), "anteromedial basal": (0.45, 0.45, 1.0, 1.0),
    }
    for r in REGIONS:
        if r.name.endswith(" segment"):
            words = r.name.split()
            side = words[0]
            kind = " ".join(words[3:-1])
            lobe = r.parent
            base = B["lingula"] if kind in ("superior lingular", "inferior lingular") else B[lobe]
            B[r.name] = side_frac(base, side, *seg[kind])
    # heart and mediastinum
    B["cardiac silhouette"] = _clip((hx1 - 0.01, hy1 - 0.015, hx2 + 0.01, hy2 + 0.005))
    B["cardiomediastinal silhouette"] = union(B["mediastinum"], B["cardiac silhouette"])
    hb = B["heart"]
    B["right atrium"] = frac(hb, 0.0, 0.25, 0.38, 0.9)
    B["right ventricle"] = frac(hb, 0.25, 0.45, 0.7, 1.0)
    B["left ventricle"] = frac(hb, 0.5, 0.35, 1.0, 1.0)
    B["left atrium"] = frac(hb, 0.35, 0.05, 0.7, 0.45)
    B["cardiac apex"] = frac(hb, 0.72, 0.6, 1.0, 1.0)
    B["pericardium"] = _clip((hb[0] - 0.01, hb[1] - 0.01, hb[2] + 0.01, hb[3] + 0.01))
    m = B["mediastinum"]
    B["upper mediastinum"] = (m[0], m[1], m[2], a.carina_v + 0.02)
    B["anterior mediastinum"] = frac(m, 0.1, 0.15, 0.9, 0.75)
    B["middle mediastinum"] = frac(m, 0.05, 0.35, 0.95, 1.0)
    B["posterior mediastinum"] = (min(m[0], a.spine_x()[0] - 0.01), m[1] + 0.05, max(m[2], a.spine_x()[1] + 0.01), m[3])
    (tline, thw) = a.trachea()
    B["trachea"] = _clip(_pbox(tline, thw))
    cv = a.carina_v
    B["carina"] = _clip((a.cx - 0.03, cv - 0.025, a.cx + 0.035, cv + 0.03))
    B["thoracic inlet"] = _clip((a.cx - 0.09, 0.06, a.cx + 0.09, a.traits.lung_top + 0.03))
    kx, ky, kr = a.aortic_knob()
    B["aortic knob"] = _clip((kx - kr, ky - kr, kx + kr, ky + kr))
    B["aortic arch"] = _clip((a.cx - 0.03, ky - kr - 0.01, kx + kr, ky + kr))
    B["ascending aorta"] = _clip((a.cx - 0.06, ky, a.cx - 0.01, hb[1] + 0.02))
    B["descending aorta"] = _clip((a.cx + 0.015, ky, a.cx + 0.06, a.dome("left")))
    B["aorta"] = union(B["aortic arch"], B["ascending aorta"], B["descending aorta"])
    B["aortopulmonary window"] = _clip((a.cx + 0.02, ky + kr - 0.005, a.cx + 0.075, ky + kr + 0.04))
    B["superior vena cava"] = _clip((a.cx - 0.065, 0.13, a.cx - 0.02, hb[1] + 0.04))
    B["cavoatrial junction"] = _clip((a.cx - 0.07, hb[1] + 0.0, a.cx - 0.02, hb[1] + 0.06))
    B["azygos vein"] = _clip((a.cx - 0.045, cv - 0.04, a.cx - 0.012, cv + 0.01))
    B["main pulmonary artery"] = _clip((a.cx + 0.03, ky + kr + 0.01, a.cx + 0.09, ky + kr + 0.07))
    B["pulmonary arteries"] = union(B["main pulmonary artery"], B["left pulmonary artery"], B["right pulmonary artery"])
    eso = a.esophagus_line()
    B["esophagus"] = _clip(_pbox(eso[:4], 0.015))
    B["gastroesophageal junction"] = _clip(_pbox(eso[3:5] * [1, 1] + [[-0.02, 0], [-0.06, -0.03]], 0.02))
    # spine and bones
    sx0, sx1 = a.spine_x()
    vv = a.vertebra_v()
    for n, (y0, y1) in vv.items():
        B[f"{n} vertebra"] = _clip((sx0, y0, sx1, y1))
    B["cervical spine"] = _clip((sx0, 0.0, sx1, vv["C7"][1]))
    B["thoracic spine"] = _clip((sx0, vv["T1"][0], sx1, vv["T12"][1]))
    B["lumbar spine"] = _clip((sx0, vv["L1"][0], sx1, 1.0))
    B["spine"] = _clip((sx0, 0.0, sx1, 1.0))
    B["sternum"] = _clip((a.cx - 0.03, a.traits.lung_top + 0.04, a.cx + 0.03, hb[1] + 0.02))
    B["osseous structures"] = union(B["ribs"], B["spine"], B["left clavicle"], B["right clavicle"])
    # soft tissues, neck, abdomen
    B["soft tissues"] = _clip(body)
    B["neck"] = _clip((a.cx - 0.09, 0.0, a.cx + 0.09, a.traits.lung_top - 0.01))
    dmin = min(a.dome("left"), a.dome("right"))
    B["abdomen"] = _clip((body[0] + 0.04, dmin + 0.02, body[2] - 0.04, 1.0))
    B["upper abdomen"] = _clip((body[0] + 0.04, dmin + 0.02, body[2] - 0.04, min(1.0, dmin + 0.2)))
    B["stomach"] = _clip(_pbox(a.stomach_bubble(), 0.025))
    B["liver"] = _clip(union(frac(B["right subdiaphragmatic region"], 0, 0, 1.3, 1)))
    B["spleen"] = side_frac(B["left subdiaphragmatic region"], "left", 0, 0, 0.45, 1)
    return {k: _clip(tuple(map(float, v))) for k, v in B.items()}  # type: ignore[misc]


# ----------------------------------------------------------------------------------------------
# lateral view


@dataclass
class LateralAnatomy:
    """Side view (patient facing the image's left): one lung field where both lungs overlap,
    heart anterior, spine posterior. Boxes on it are coarse, as in the release."""

    traits: Traits
    mods: Modifiers = field(default_factory=Modifiers)

    def body(self) -> np.ndarray:
        return np.array([[0.22, 0.0], [0.17, 0.15], [0.12, 0.45], [0.13, 0.8], [0.16, 1.0],
                         [0.9, 1.0], [0.9, 0.6], [0.86, 0.2], [0.74, 0.05], [0.66, 0.0]])

    def lung(self) -> np.ndarray:
        t = self.traits
        d = 0.5 * (t.dome_left + t.dome_right) - self.mods.dome_raise
        return np.array([[0.42, t.lung_top - 0.01], [0.30, t.lung_top + 0.06], [0.2, 0.3], [0.17, 0.55],
                         [0.2, d - 0.02], [0.45, d - 0.06], [0.65, d + 0.01], [0.76, d + 0.09],
                         [0.78, 0.5], [0.72, 0.25], [0.6, t.lung_top + 0.01]])

    def heart(self) -> np.ndarray:
        t, m = self.traits, self.mods
        r = 0.15 * m.heart_scale
        return _ellipse(0.34 + 0.02 * (m.heart_scale - 1), t.heart_center_v + 0.01, r * 0.95, 0.13 * (1 + 0.3 * (m.heart_scale - 1)))

    def spine_x(self) -> tuple[float, float]:
        return 0.74, 0.83

    def dome(self) -> float:
        return 0.5 * (self.traits.dome_left + self.traits.dome_right) - self.mods.dome_raise


def lateral_region_boxes(a: LateralAnatomy, frontal: dict[str, Box]) -> dict[str, Box]:
    """Boxes on the lateral view: the vertical extent follows the frontal box, the horizontal
    extent the lateral structure it lies in (left and right collapse onto each other)."""
    lung = _pbox(a.lung())
    heart = _pbox(a.heart())
    sx0, sx1 = a.spine_x()
    body = _pbox(a.body())
    out: dict[str, Box] = {}
    for name, fb in frontal.items():
        if any(w in name for w in ("vertebra", "spine")):
            out[name] = (sx0, fb[1], sx1, fb[3])
        elif any(w in name for w in ("heart", "ventricle", "atrium", "cardiac", "pericardium")):
            out[name] = (heart[0], max(heart[1], fb[1] - 0.02), heart[2], min(heart[3], fb[3] + 0.02))
        elif any(w in name for w in ("trachea", "carina", "bronchus", "esophagus", "aort", "vena cava",
                                     "mediastin", "hilar", "paratracheal", "azygos", "pulmonary arter", "sternum")):
            out[name] = (0.35, fb[1], 0.7, fb[3])
        elif any(w in name for w in ("lung", "lobe", "segment", "lingula", "pleura", "costophrenic",
                                     "hemithorax", "fissure", "zone", "apex", "base", "hilar", "retrocardiac",
                                     "diaphragm", "cardiophrenic")):
            y1 = max(lung[1], fb[1])
            y2 = min(max(lung[3], fb[3]), 1.0)
            out[name] = (lung[0], y1, lung[2], max(y2, y1 + 0.02))
        else:
            out[name] = (body[0], fb[1], body[2], fb[3])
    return {k: _clip(v) for k, v in out.items()}


def with_ap(anat: FrontalAnatomy) -> FrontalAnatomy:
    """The same patient imaged AP (portable): the heart is magnified by ~10%."""
    return replace(anat, mods=replace(anat.mods, ap_magnification=1.1))
