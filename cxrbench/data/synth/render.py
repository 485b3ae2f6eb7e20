"""Rendering of the synthetic radiographs.

The picture is a sum of densities (bright = dense, as on a radiograph: soft tissue and bone
bright, aerated lung dark) built from the shapes of :mod:`.anatomy`, then blurred, exposure-
jittered and noised. Each positive finding is drawn inside the box of the region its
observation names, with a pattern of its own whose strength and extent grow with severity
(see :data:`DRAW_KINDS`); negative findings are not drawn. That is what makes the data
learnable *and* localisable: the answer is in the pixels, inside the box.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from cxrbench.data.synth.anatomy import Box, FrontalAnatomy, LateralAnatomy, Pose
from cxrbench.data.synth.lexicon import SIDES


@dataclass(frozen=True)
class Draw:
    """One positive finding to draw: its pattern ``kind``, the normalised box of its region
    (drawn inside it), its side, and severity 1-3 (0 for findings without a severity)."""

    kind: str
    box: Box
    side: str | None = None
    severity: int = 0
    params: dict = field(default_factory=dict, hash=False, compare=False)


DRAW_KINDS = (
    "consolidation", "pneumonia", "opacity", "edema", "effusion", "pneumothorax", "atelectasis",
    "nodule", "mass", "pleural_thickening", "ett", "ngt", "cvc", "picc", "chest_tube", "pacemaker",
    "sternotomy", "ecg_leads",
)


class Canvas:
    """A density image with drawing helpers in normalised coordinates."""

    def __init__(self, size: int, pose: Pose):
        self.size = size
        self.pose = pose
        self.d = np.zeros((size, size), dtype=np.float32)
        self.U, self.V = pose.inverse_grid(size)
        self.px = size / 256.0  # pixel scale relative to a 256-pixel image

    # -- masks
    def polygon_mask(self, pts: np.ndarray, blur: float = 0.0) -> np.ndarray:
        img = Image.new("L", (self.size, self.size), 0)
        ImageDraw.Draw(img).polygon([tuple(p) for p in self.pose.apply(pts, self.size)], fill=255)
        if blur > 0:
            img = img.filter(ImageFilter.GaussianBlur(blur * self.px))
        return np.asarray(img, dtype=np.float32) / 255.0

    def line_mask(self, pts: np.ndarray, width: float, blur: float = 0.6) -> np.ndarray:
        img = Image.new("L", (self.size, self.size), 0)
        w = max(1, int(round(width * self.size)))
        xy = [tuple(p) for p in self.pose.apply(pts, self.size)]
        ImageDraw.Draw(img).line(xy, fill=255, width=w, joint="curve")
        if blur > 0:
            img = img.filter(ImageFilter.GaussianBlur(blur * self.px))
        return np.asarray(img, dtype=np.float32) / 255.0

    def ellipse_mask(self, cx: float, cy: float, rx: float, ry: float, soft: float = 0.15) -> np.ndarray:
        r = np.sqrt(((self.U - cx) / rx) ** 2 + ((self.V - cy) / ry) ** 2)
        return np.clip((1.0 - r) / max(soft, 1e-3), 0.0, 1.0)

    def box_mask(self, box: Box, soft: float = 0.01) -> np.ndarray:
        x1, y1, x2, y2 = box
        mx = np.clip(np.minimum(self.U - x1, x2 - self.U) / soft, 0, 1)
        my = np.clip(np.minimum(self.V - y1, y2 - self.V) / soft, 0, 1)
        return mx * my

    def smooth_noise(self, rng: np.random.Generator, cells: int) -> np.ndarray:
        """Unit-variance smooth noise with about ``cells`` blobs across the image."""
        small = rng.standard_normal((cells, cells)).astype(np.float32)
        img = Image.fromarray(small, mode="F").resize((self.size, self.size), Image.BICUBIC)
        a = np.asarray(img, dtype=np.float32)
        return (a - a.mean()) / (a.std() + 1e-6)

    def add(self, mask: np.ndarray, amount: float) -> None:
        self.d += amount * mask

    def layer(self) -> "Layer":
        return Layer(self)


class Layer:
    """Several sharp shapes drawn into one 8-bit layer and blurred once (blurring is the cost
    of rendering: one blur per layer instead of one per shape)."""

    def __init__(self, canvas: Canvas):
        self.c = canvas
        self.img = Image.new("L", (canvas.size, canvas.size), 0)
        self.draw = ImageDraw.Draw(self.img)

    def line(self, pts: np.ndarray, width: float, value: int = 255) -> "Layer":
        w = max(1, int(round(width * self.c.size)))
        self.draw.line([tuple(p) for p in self.c.pose.apply(pts, self.c.size)], fill=value, width=w, joint="curve")
        return self

    def polygon(self, pts: np.ndarray, value: int = 255) -> "Layer":
        self.draw.polygon([tuple(p) for p in self.c.pose.apply(pts, self.c.size)], fill=value)
        return self

    def rect(self, box: Box, value: int = 255) -> "Layer":
        x1, y1, x2, y2 = box
        return self.polygon(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]), value)

    def mask(self, blur: float) -> np.ndarray:
        img = self.img.filter(ImageFilter.GaussianBlur(blur * self.c.px)) if blur > 0 else self.img
        return np.asarray(img, dtype=np.float32) / 255.0

    def commit(self, amount: float, blur: float, where: np.ndarray | None = None) -> None:
        m = self.mask(blur)
        self.c.add(m if where is None else m * where, amount)


# ----------------------------------------------------------------------------------------------
# frontal view


def _vessel_tree(rng: np.random.Generator, hilum: tuple[float, float], side: str, n: int) -> list[np.ndarray]:
    """Lung markings: tapering branches radiating from the hilum into the lung."""
    out = []
    sx = -1 if side == "right" else 1
    for _ in range(n):
        ang = rng.uniform(-np.pi * 0.45, np.pi * 0.55)  # 0 = lateral
        length = rng.uniform(0.12, 0.3)
        pts = [np.array(hilum)]
        direction = np.array([sx * np.cos(ang), -np.sin(ang) * 0.9])
        steps = 6
        for _ in range(steps):
            direction = direction + rng.normal(0, 0.15, 2)
            direction /= np.linalg.norm(direction)
            pts.append(pts[-1] + direction * length / steps)
        out.append(np.array(pts))
    return out


def render_frontal(anat: FrontalAnatomy, pose: Pose, draws: list[Draw], size: int,
                   rng: np.random.Generator, anatomy_rng: np.random.Generator) -> np.ndarray:
    """Render one frontal image (uint8, size x size). ``anatomy_rng`` draws the patient-level
    texture (lung markings), ``rng`` this image's noise and finding textures."""
    # exposure noise from its own stream: drawing a finding must not change the rest of the picture
    expose_rng = np.random.default_rng(rng.integers(2 ** 63))
    c = Canvas(min(size, WORK_RES), pose)
    body = c.polygon_mask(anat.body(), blur=2.0)
    c.add(body, 0.56)
    # soft tissue is denser towards the edges and the abdomen
    c.add(body * np.clip((c.V - anat.dome("right")) * 2.5, 0, 0.2), 1.0)
    lungs = {s: c.polygon_mask(anat.lung(s), blur=1.3) for s in SIDES}
    lung_any = np.maximum(lungs["left"], lungs["right"])
    # lungs: aerated (dark), slightly darker laterally and at the apices
    cxn = anat.cx
    lateral = np.clip(np.abs(c.U - cxn) / 0.4, 0, 1)
    c.add(lung_any, -0.36 - 0.05 * lateral)

    suppress = np.zeros_like(c.d)  # where lung markings are absent (pneumothorax rims)
    for dr in draws:
        if dr.kind == "pneumothorax":
            suppress = np.maximum(suppress, _pneumothorax_rim(c, anat, dr, lungs[dr.side or "right"]))

    # lung markings
    vessels = c.layer()
    for s in SIDES:
        for br in _vessel_tree(anatomy_rng, anat.hilum(s), s, 22):
            for i in range(len(br) - 1):
                vessels.line(br[i:i + 2], (2.4 - 0.35 * i) / 256, value=200 - 22 * i)
    vessels.commit(0.09, 0.7, where=lung_any * (1 - suppress))
    c.add(lung_any * (1 - suppress) * c.smooth_noise(anatomy_rng, 48), 0.018)

    # mediastinum, heart, aortic knob, hila
    mediastinum = c.polygon_mask(anat.mediastinum(), blur=1.5)
    c.add(mediastinum, 0.19)
    heart = c.polygon_mask(anat.heart(), blur=1.8)
    c.add(heart * (1 - 0.5 * mediastinum), 0.27)
    kx, ky, kr = anat.aortic_knob()
    c.add(c.ellipse_mask(kx, ky, kr, kr * 0.9, soft=0.3), 0.26)
    for s in SIDES:
        hx, hy = anat.hilum(s)
        c.add(c.ellipse_mask(hx, hy, 0.035, 0.05, soft=0.8), 0.12)
    # trachea and main bronchi (air: dark)
    tl, thw = anat.trachea()
    air = c.layer().line(tl, 2 * thw)
    for s in SIDES:
        air.line(anat.bronchus(s), 0.018, value=150)
    air.commit(-0.14, 1.0)
    # spine: vertebral bodies seen through the mediastinum
    sx0, sx1 = anat.spine_x()
    spine = c.layer()
    for (y0, y1) in anat.vertebra_v().values():
        spine.rect((sx0 + 0.004, y0, sx1 - 0.004, y1))
    spine.commit(0.06, 0.6)
    # ribs (a fracture is a gap with the distal part displaced), clavicles, scapulae, humeri
    breaks = {(s, k): pos for s, k, pos in anat.mods.fractures}
    posterior, anterior, bones = c.layer(), c.layer(), c.layer()
    for s in SIDES:
        for k in range(1, 13):
            pts = anat.rib(s, k, "posterior")
            if (s, k) in breaks:
                cut = int(breaks[(s, k)] * len(pts))
                for seg in (pts[: cut - 1], pts[cut + 1:] + [0.0, 0.014]):
                    if len(seg) > 1:
                        posterior.line(seg, 2 * anat.rib_half_thickness)
            else:
                posterior.line(pts, 2 * anat.rib_half_thickness)
            if k <= 6:
                anterior.line(anat.rib(s, k, "anterior"), 1.6 * anat.rib_half_thickness)
        bones.line(anat.clavicle(s), 0.022)
        hx, hy, hr = anat.humeral_head(s)
        bones.polygon(np.array([[hx + hr * np.cos(t), hy + hr * np.sin(t)] for t in np.linspace(0, 2 * np.pi, 24)]))
        c.add(c.polygon_mask(anat.scapula(s), blur=2.0) * body, 0.05)
    posterior.commit(0.08, 0.8)
    anterior.commit(0.04, 1.2)
    bones.commit(0.17, 0.8)
    # gastric air bubble under the left hemidiaphragm
    c.add(c.polygon_mask(anat.stomach_bubble(), blur=2.0) * (1 - lung_any), -0.16)

    for dr in draws:
        _DRAWERS[dr.kind](c, anat, dr, rng, lungs)
    return _expose(c, expose_rng, size)


# Images are drawn at most at this resolution and resized to the requested size (blurring is
# the cost of drawing and grows with the area; radiographs are smooth at this scale anyway).
WORK_RES = 256


def _expose(c: Canvas, rng: np.random.Generator, size: int) -> np.ndarray:
    """Blur, exposure (brightness/contrast) jitter, resize to ``size``, quantum noise, 8-bit."""
    d = ndimage.gaussian_filter(c.d, 0.6 * c.px)
    contrast = rng.uniform(0.9, 1.1)
    bright = rng.uniform(-0.04, 0.04)
    img = (d - 0.3) * contrast + 0.3 + bright
    img = np.clip(img, 0, 1) ** rng.uniform(0.9, 1.1)
    if c.size != size:
        img = np.asarray(Image.fromarray(img.astype(np.float32), mode="F").resize((size, size), Image.BICUBIC))
    img = img + rng.normal(0, 0.014, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# finding patterns (frontal)

SEV_SCALE = {0: 0.55, 1: 0.45, 2: 0.7, 3: 1.0}


def _box_center(box: Box) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    return (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2


def _airspace(c: Canvas, anat, dr: Draw, rng, lungs, texture: float, density: float, bronchograms: bool) -> None:
    cx, cy, rx, ry = _box_center(dr.box)
    f = SEV_SCALE[dr.severity]
    cx += rng.uniform(-0.2, 0.2) * rx * (1 - f)
    cy += rng.uniform(-0.2, 0.2) * ry * (1 - f)
    blob = c.ellipse_mask(cx, cy, rx * (0.45 + 0.5 * f), ry * (0.45 + 0.5 * f), soft=0.5)
    noise = c.smooth_noise(rng, 40)
    patch = np.clip(blob * (1 + texture * noise) - texture * 0.3, 0, 1)
    lung = lungs[dr.side] if dr.side in lungs else np.maximum(lungs["left"], lungs["right"])
    inside = patch * lung * c.box_mask(dr.box, soft=0.02)
    c.add(inside, density * (0.55 + 0.45 * f))
    if bronchograms and dr.severity >= 2:
        for _ in range(3):
            p0 = np.array([cx, cy]) + rng.normal(0, 0.01, 2)
            d = rng.normal(0, 1, 2)
            d /= np.linalg.norm(d)
            pts = np.array([p0, p0 + d * rx * 0.5, p0 + d * rx * 0.9 + rng.normal(0, 0.01, 2)])
            c.add(c.line_mask(pts, 0.006, 0.5) * inside, -0.12)


def _consolidation(c, anat, dr, rng, lungs):
    _airspace(c, anat, dr, rng, lungs, texture=0.25, density=0.42, bronchograms=True)


def _pneumonia(c, anat, dr, rng, lungs):
    _airspace(c, anat, dr, rng, lungs, texture=0.6, density=0.38, bronchograms=False)


def _opacity(c, anat, dr, rng, lungs):
    _airspace(c, anat, dr, rng, lungs, texture=0.15, density=0.28, bronchograms=False)


def _edema(c, anat, dr, rng, lungs):
    """Bilateral perihilar haze (bat wing) and, from moderate on, Kerley B lines at the bases."""
    f = SEV_SCALE[dr.severity]
    lung = np.maximum(lungs["left"], lungs["right"])
    haze = np.zeros_like(c.d)
    for s in SIDES:
        hx, hy = anat.hilum(s)
        sig = 0.07 + 0.08 * f
        haze = np.maximum(haze, np.exp(-(((c.U - hx) ** 2) / (2 * sig ** 2) + ((c.V - hy) ** 2) / (2 * (sig * 1.4) ** 2))))
    c.add(haze * lung * c.box_mask(dr.box, 0.03) * (1 + 0.2 * c.smooth_noise(rng, 30)), 0.08 + 0.16 * f)
    if dr.severity >= 2:
        for s in SIDES:
            lb = anat.lung(s)
            x_lat = lb[:, 0].min() if s == "right" else lb[:, 0].max()
            sx = 1 if s == "right" else -1
            for k in range(2 + 2 * dr.severity):
                y = anat.dome(s) - 0.01 - 0.014 * k
                pts = np.array([[x_lat + sx * 0.008, y], [x_lat + sx * 0.045, y + rng.normal(0, 0.003)]])
                c.add(c.line_mask(pts, 0.004, 0.4) * lung, 0.12)


def _effusion(c, anat, dr, rng, lungs):
    """Fluid layering at the lung base: fills the region up to a level that rises laterally
    (meniscus), blunting the costophrenic angle and hiding the hemidiaphragm."""
    f = SEV_SCALE[dr.severity]
    s = dr.side or "right"
    x1, y1, x2, y2 = dr.box
    top = y1 + (y2 - y1) * (0.55 - 0.5 * f)  # fluid level at the medial side of the box
    lat_edge = x1 if s == "right" else x2
    width = max(x2 - x1, 1e-3)
    lateral_pos = np.clip(1 - np.abs(c.U - lat_edge) / width, 0, 1)  # 1 at the lateral edge
    level = top - 0.05 * f * lateral_pos ** 2
    fluid = np.clip((c.V - level) / 0.012, 0, 1)
    region = lungs[s] * np.clip((c.V - y1) / 0.01, 0, 1)
    c.add(fluid * region, 0.30 + 0.12 * f)
    # the meniscus edge itself is a little brighter
    c.add(np.exp(-((c.V - level) / 0.006) ** 2) * region, 0.05)


def _pneumothorax_rim(c: Canvas, anat, dr: Draw, lung: np.ndarray) -> np.ndarray:
    """Rim of the lung (apical/lateral) in the region box that holds pleural air."""
    f = SEV_SCALE[dr.severity]
    inside = lung > 0.5
    dist = ndimage.distance_transform_edt(inside) / c.size  # normalised distance to the lung edge
    w = 0.012 + 0.05 * f
    s = dr.side or "right"
    away_from_midline = (c.U < anat.cx - 0.07) if s == "right" else (c.U > anat.cx + 0.07)
    rim = (dist < w) & inside & away_from_midline
    return rim.astype(np.float32) * c.box_mask(dr.box, 0.01)


def _pneumothorax(c, anat, dr, rng, lungs):
    rim = _pneumothorax_rim(c, anat, dr, lungs[dr.side or "right"])
    c.add(ndimage.gaussian_filter(rim, 0.6 * c.px), -0.15)
    # the visceral pleural line: a thin bright edge where the rim ends
    edge = ndimage.binary_dilation(rim > 0.5, iterations=max(1, int(c.px))) & ~(rim > 0.5) & (lungs[dr.side or "right"] > 0.5)
    c.add(ndimage.gaussian_filter(edge.astype(np.float32), 0.5 * c.px) * c.box_mask(dr.box, 0.01), 0.22)


def _atelectasis(c, anat, dr, rng, lungs):
    """Plate-like bands: thin bright lines, more and thicker with severity."""
    x1, y1, x2, y2 = dr.box
    lung = lungs[dr.side] if dr.side in lungs else np.maximum(lungs["left"], lungs["right"])
    for _ in range(dr.severity or 1):
        y = y1 + (y2 - y1) * rng.uniform(0.3, 0.8)
        tilt = rng.uniform(-0.04, 0.04)
        pts = np.array([[x1 + 0.15 * (x2 - x1), y], [x2 - 0.15 * (x2 - x1), y + tilt]])
        c.add(c.line_mask(pts, 0.008 + 0.006 * dr.severity, 1.0) * lung, 0.30)


def _round(c, anat, dr, rng, lungs, radius: float, amount: float):
    cx, cy, rx, ry = _box_center(dr.box)
    cx += rng.uniform(-0.4, 0.4) * max(rx - radius, 0)
    cy += rng.uniform(-0.4, 0.4) * max(ry - radius, 0)
    c.add(c.ellipse_mask(cx, cy, radius, radius * rng.uniform(0.85, 1.15), soft=0.25), amount)


def _nodule(c, anat, dr, rng, lungs):
    _round(c, anat, dr, rng, lungs, radius=float(rng.uniform(0.014, 0.022)), amount=0.34)


def _mass(c, anat, dr, rng, lungs):
    x1, y1, x2, y2 = dr.box
    r = min(0.035 + 0.015 * dr.severity, 0.45 * min(x2 - x1, y2 - y1))
    _round(c, anat, dr, rng, lungs, radius=max(r, 0.02), amount=0.38)


def _pleural_thickening(c, anat, dr, rng, lungs):
    lung = lungs[dr.side or "right"] > 0.5
    dist = ndimage.distance_transform_edt(lung) / c.size
    rim = ((dist < 0.012) & lung).astype(np.float32) * c.box_mask(dr.box, 0.01)
    c.add(ndimage.gaussian_filter(rim, 0.8 * c.px), 0.18)


# devices: thin bright tubes and lines, a pacemaker box


def _tube(c: Canvas, pts: np.ndarray, width: float, amount: float, walls: bool = False) -> None:
    if walls:  # a tube seen as two parallel radiopaque walls
        c.add(c.line_mask(pts, width, 0.5), amount * 0.6)
        c.add(c.line_mask(pts, width * 0.4, 0.5), -amount * 0.3)
    else:
        c.add(c.line_mask(pts, width, 0.5), amount)


def _ett(c, anat, dr, rng, lungs):
    tl, _ = anat.trachea()
    tip = anat.carina_v - rng.uniform(0.03, 0.07)
    pts = np.array([[anat.cx - 0.01, 0.0], [anat.cx - 0.004, 0.1], [anat.cx + 0.001, tip]])
    _tube(c, pts, 0.014, 0.35, walls=True)


def _ngt(c, anat, dr, rng, lungs):
    eso = anat.esophagus_line()
    end = eso[-1] + [rng.uniform(-0.02, 0.03), rng.uniform(0.0, 0.03)]
    pts = np.concatenate([eso[:-1], [end]])
    _tube(c, pts, 0.008, 0.38)


def _cvc(c, anat, dr, rng, lungs):
    side = dr.side or "right"
    sx = -1 if side == "right" else 1
    start = (anat.cx + sx * 0.2, anat.traits.lung_top + 0.02)
    tip_v = anat.carina_v + rng.uniform(0.02, 0.08)
    pts = np.array([start, (anat.cx + sx * 0.1, anat.traits.lung_top + 0.05), (anat.cx - 0.04, anat.traits.lung_top + 0.09),
                    (anat.cx - 0.042, tip_v)])
    _tube(c, pts, 0.006, 0.4)


def _picc(c, anat, dr, rng, lungs):
    side = dr.side or "right"
    sx = -1 if side == "right" else 1
    pts = np.array([(0.5 + sx * 0.5, 0.24), (0.5 + sx * 0.36, 0.2), (anat.cx + sx * 0.12, anat.traits.lung_top + 0.04),
                    (anat.cx - 0.04, anat.traits.lung_top + 0.1), (anat.cx - 0.042, anat.carina_v + rng.uniform(0.03, 0.09))])
    _tube(c, pts, 0.005, 0.38)


def _chest_tube(c, anat, dr, rng, lungs):
    s = dr.side or "right"
    x1, y1, x2, y2 = dr.box
    lat = x1 if s == "right" else x2
    sx = 1 if s == "right" else -1
    entry = (lat - sx * 0.04, y1 + 0.62 * (y2 - y1))
    tip = (lat + sx * (0.25 * (x2 - x1)), y1 + 0.15 * (y2 - y1))
    mid = (lat + sx * 0.03, y1 + 0.45 * (y2 - y1))
    pts = np.array([entry, mid, tip])
    _tube(c, pts, 0.013, 0.42, walls=True)


def _pacemaker(c, anat, dr, rng, lungs):
    x1, y1, x2, y2 = dr.box
    gx, gy = x1 + 0.5 * (x2 - x1), y1 + 0.22 * (y2 - y1)
    c.add(c.box_mask((gx - 0.035, gy - 0.022, gx + 0.035, gy + 0.022), 0.005), 0.55)
    hb = anat.heart()
    ra = (anat.cx - 0.04, anat.traits.heart_center_v - 0.07)
    rv = (hb[:, 0].mean() + 0.02, hb[:, 1].max() - 0.03)
    for tip in (ra, rv):
        pts = np.array([(gx - 0.02, gy + 0.01), (anat.cx + 0.02, anat.traits.lung_top + 0.1), (anat.cx - 0.035, anat.carina_v + 0.04), tip])
        _tube(c, pts, 0.005, 0.42)


def _sternotomy(c, anat, dr, rng, lungs):
    x1, y1, x2, y2 = dr.box
    for k in range(6):
        y = y1 + (k + 0.5) * (y2 - y1) / 6
        c.add(c.ellipse_mask(anat.cx, y, 0.012, 0.007, soft=0.3) - 0.7 * c.ellipse_mask(anat.cx, y, 0.006, 0.003, soft=0.3), 0.4)


def _ecg_leads(c, anat, dr, rng, lungs):
    for _ in range(3):
        u, v = rng.uniform(0.2, 0.8), rng.uniform(0.12, 0.8)
        c.add(c.ellipse_mask(u, v, 0.013, 0.013, soft=0.3), 0.3)
        end = (u + rng.uniform(-0.3, 0.3), 1.0 if rng.random() < 0.5 else 0.0)
        pts = np.array([(u, v), ((u + end[0]) / 2 + rng.normal(0, 0.05), (v + end[1]) / 2), end])
        _tube(c, pts, 0.003, 0.22)


_DRAWERS = {
    "consolidation": _consolidation, "pneumonia": _pneumonia, "opacity": _opacity, "edema": _edema,
    "effusion": _effusion, "pneumothorax": _pneumothorax, "atelectasis": _atelectasis, "nodule": _nodule,
    "mass": _mass, "pleural_thickening": _pleural_thickening, "ett": _ett, "ngt": _ngt, "cvc": _cvc,
    "picc": _picc, "chest_tube": _chest_tube, "pacemaker": _pacemaker, "sternotomy": _sternotomy,
    "ecg_leads": _ecg_leads,
}
assert set(_DRAWERS) == set(DRAW_KINDS)


# ----------------------------------------------------------------------------------------------
# lateral view


def render_lateral(anat: LateralAnatomy, pose: Pose, draws: list[Draw], size: int,
                   rng: np.random.Generator, anatomy_rng: np.random.Generator) -> np.ndarray:
    """Side view. Findings appear where a side view shows them (boxes are the lateral boxes)."""
    expose_rng = np.random.default_rng(rng.integers(2 ** 63))
    c = Canvas(min(size, WORK_RES), pose)
    body = c.polygon_mask(anat.body(), blur=2.5)
    c.add(body, 0.6)
    lung = c.polygon_mask(anat.lung(), blur=2.0)
    c.add(lung, -0.33)
    c.add(lung * c.smooth_noise(anatomy_rng, 40), 0.015)
    heart = c.polygon_mask(anat.heart(), blur=2.5)
    c.add(heart * lung, 0.22)
    sx0, sx1 = anat.spine_x()
    for k in range(16):
        y0 = 0.05 + k * 0.058
        c.add(c.box_mask((sx0, y0, sx1, y0 + 0.048), 0.006), 0.1)
    c.add(c.line_mask(np.array([[0.16, 0.2], [0.14, 0.55]]), 0.015, 1.0), 0.12)  # sternum
    c.add(c.line_mask(np.array([[0.52, 0.0], [0.5, anat.traits.lung_top + 0.22]]), 0.03, 1.5), -0.1)  # trachea
    lungs = {"left": lung, "right": lung}
    for dr in draws:
        if dr.kind == "effusion":  # posterior costophrenic sulcus
            x1, y1, x2, y2 = dr.box
            f = SEV_SCALE[dr.severity]
            level = anat.dome() + 0.06 - 0.12 * f - 0.08 * np.clip((c.U - 0.5) / 0.3, 0, 1)
            c.add(np.clip((c.V - level) / 0.012, 0, 1) * lung, 0.3 + 0.1 * f)
        elif dr.kind in ("pneumothorax", "sternotomy", "pacemaker", "pleural_thickening"):
            continue  # not reliably seen on a lateral view
        elif dr.kind in _DRAWERS and dr.kind not in ("cvc", "picc", "ett", "ngt", "chest_tube", "ecg_leads", "edema"):
            _DRAWERS[dr.kind](c, anat, dr, rng, lungs)
        elif dr.kind == "edema":
            c.add(c.ellipse_mask(0.45, 0.45, 0.2, 0.18, soft=1.0) * lung, 0.1 + 0.1 * SEV_SCALE[dr.severity])
        else:  # tubes and lines: a bright line through the mediastinum
            pts = np.array([[0.5, 0.0], [0.5 + rng.uniform(-0.05, 0.05), 0.35], [0.48, 0.5 + rng.uniform(0, 0.2)]])
            _tube(c, pts, 0.007, 0.3)
    return _expose(c, expose_rng, size)
