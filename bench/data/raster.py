"""Rasterise a :class:`~bench.data.scene.Scene` into geometry layers with a z-buffer.

The layers (reflectance, labels, depth, instances, surface orientation, emitters and light
sources) carry everything the lighting models in :mod:`bench.data.conditions` need, so the
day image and every adverse image of a scene come from the same geometry and stay
pixel-aligned with the labels and boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from bench.data.scene import (
    BUILDING,
    CAR,
    IGNORE,
    LABEL_TO_BOX_CATEGORY,
    PERSON,
    POLE,
    ROAD,
    SIDEWALK,
    SKY,
    TRAFFIC_LIGHT,
    TRAFFIC_SIGN,
    VEGETATION,
    BOX_CATEGORIES,
    Scene,
)

# Surface orientation per pixel, for the lighting models.
SURF_SKY, SURF_GROUND, SURF_FACADE_LEFT, SURF_FACADE_RIGHT, SURF_FRONT = 0, 1, 2, 3, 4
SKY_DEPTH = 1.0e4
GROUND_MAX_DEPTH = 400.0


@dataclass
class Light:
    """A light source for the night models: point light, optionally a spot with a cone along ``direction``."""

    position: tuple[float, float, float]
    color: tuple[float, float, float]
    power: float
    direction: tuple[float, float, float] | None = None
    cone_exponent: float = 0.0
    glow: float = 1.0  # brightness of the source itself as seen by the camera (for glare sprites)
    kind: str = "lamp"


@dataclass
class SceneLayers:
    height: int
    width: int
    focal_px: float
    cx: float
    horizon_px: float
    cam_height: float
    albedo: np.ndarray  # H x W x 3, display-space reflectance in [0, 1]
    label: np.ndarray  # H x W uint8, Cityscapes train ids, 255 = ignore
    depth: np.ndarray  # H x W float32, metres along Z (SKY_DEPTH for sky)
    instance: np.ndarray  # H x W int32, 0 = none
    surface: np.ndarray  # H x W int8, one of SURF_*
    shadow: np.ndarray  # H x W float32 in (0, 1], contact shadows under cars (day)
    emission: np.ndarray  # H x W x 3 linear radiance of night emitters (windows, lamps, car lights)
    tail_lights: np.ndarray  # H x W bool, pixels of car lights
    lights: list[Light] = field(default_factory=list)
    instance_category: dict[int, int] = field(default_factory=dict)
    instance_depth: dict[int, float] = field(default_factory=dict)

    def world_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """World X and Y of every pixel (from its depth), for the lighting models."""
        xs = (np.arange(self.width, dtype=np.float32) + 0.5)[None, :]
        ys = (np.arange(self.height, dtype=np.float32) + 0.5)[:, None]
        z = np.minimum(self.depth, GROUND_MAX_DEPTH)
        wx = (xs - self.cx) * z / self.focal_px
        wy = self.cam_height - (ys - self.horizon_px) * z / self.focal_px
        return wx, wy

    def project(self, x: float, y: float, z: float) -> tuple[float, float]:
        return self.cx + self.focal_px * x / z, self.horizon_px + self.focal_px * (self.cam_height - y) / z

    def boxes(self, min_pixels: int = 12) -> list[dict]:
        """COCO-style boxes of the visible part of every car and person instance."""
        out = []
        for inst, cat in sorted(self.instance_category.items()):
            ys, xs = np.nonzero(self.instance == inst)
            if len(xs) < min_pixels or ys.max() - ys.min() < 2:
                continue
            x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
            out.append(
                {
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "category_id": cat,
                    "category": BOX_CATEGORIES[cat],
                    "area": int(len(xs)),
                    "depth": round(self.instance_depth[inst], 3),
                }
            )
        return out


def _value_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    grid = rng.standard_normal((max(2, cells // 2), max(2, cells))).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


class _Canvas:
    """Z-buffered painter over the layers; every primitive is a world-space shape at one depth."""

    def __init__(self, layers: SceneLayers) -> None:
        self.L = layers
        self.next_instance = 1

    def region(self, x0: float, x1: float, y0: float, y1: float) -> tuple[slice, slice] | None:
        L = self.L
        c0, c1 = max(0, int(np.floor(x0))), min(L.width, int(np.ceil(x1)) + 1)
        r0, r1 = max(0, int(np.floor(y0))), min(L.height, int(np.ceil(y1)) + 1)
        if c0 >= c1 or r0 >= r1:
            return None
        return slice(r0, r1), slice(c0, c1)

    def world_coords(self, rs: slice, cs: slice, z: float) -> tuple[np.ndarray, np.ndarray]:
        L = self.L
        xs = (np.arange(cs.start, cs.stop, dtype=np.float32) + 0.5)[None, :]
        ys = (np.arange(rs.start, rs.stop, dtype=np.float32) + 0.5)[:, None]
        return (xs - L.cx) * z / L.focal_px, L.cam_height - (ys - L.horizon_px) * z / L.focal_px

    def paint(
        self,
        rs: slice,
        cs: slice,
        mask: np.ndarray,
        z: float | np.ndarray,
        label: int,
        color: tuple[float, float, float] | np.ndarray,
        surface: int = SURF_FRONT,
        instance: int = 0,
        emission: tuple[float, float, float] | None = None,
    ) -> np.ndarray:
        """Paint ``mask`` where it is nearer than what is there; returns the pixels actually written."""
        L = self.L
        zb = L.depth[rs, cs]
        win = mask & (z < zb)
        if not win.any():
            return win
        zb[win] = (z[win] if isinstance(z, np.ndarray) else z)
        L.label[rs, cs][win] = label
        col = np.asarray(color, dtype=np.float32)
        L.albedo[rs, cs][win] = col[win] if col.ndim == 3 else col
        L.surface[rs, cs][win] = surface
        L.instance[rs, cs][win] = instance
        L.emission[rs, cs][win] = emission if emission is not None else 0.0
        L.tail_lights[rs, cs][win] = emission is not None and label == CAR
        return win

    def rect(self, x0, x1, y0, y1, z, label, color, instance=0, emission=None, surface=SURF_FRONT):
        """Axis-aligned world rectangle [x0,x1] x [y0,y1] facing the camera at depth z."""
        L = self.L
        px0, py1 = L.project(x0, y0, z)
        px1, py0 = L.project(x1, y1, z)
        reg = self.region(px0, px1, py0, py1)
        if reg is None:
            return
        rs, cs = reg
        wx, wy = self.world_coords(rs, cs, z)
        mask = (wx >= x0) & (wx <= x1) & (wy >= y0) & (wy <= y1)
        self.paint(rs, cs, mask, z, label, color, surface, instance, emission)

    def ellipse(self, xc, yc, rx, ry, z, label, color, instance=0, emission=None, texture=None):
        L = self.L
        px0, py1 = L.project(xc - rx, yc - ry, z)
        px1, py0 = L.project(xc + rx, yc + ry, z)
        reg = self.region(px0, px1, py0, py1)
        if reg is None:
            return
        rs, cs = reg
        wx, wy = self.world_coords(rs, cs, z)
        mask = ((wx - xc) / rx) ** 2 + ((wy - yc) / ry) ** 2 <= 1.0
        col = color
        if texture is not None:
            col = np.clip(np.asarray(color, np.float32) * (1 + 0.25 * texture[rs, cs, None]), 0, 1)
        self.paint(rs, cs, mask, z, label, col, SURF_FRONT, instance, emission)


def rasterize(scene: Scene, height: int, width: int) -> SceneLayers:
    """Rasterise ``scene`` at ``height`` x ``width`` pixels."""
    f = scene.focal * width
    L = SceneLayers(
        height=height,
        width=width,
        focal_px=f,
        cx=width / 2.0,
        horizon_px=scene.horizon * height,
        cam_height=scene.cam_height,
        albedo=np.zeros((height, width, 3), np.float32),
        label=np.full((height, width), SKY, np.uint8),
        depth=np.full((height, width), SKY_DEPTH, np.float32),
        instance=np.zeros((height, width), np.int32),
        surface=np.zeros((height, width), np.int8),
        shadow=np.ones((height, width), np.float32),
        emission=np.zeros((height, width, 3), np.float32),
        tail_lights=np.zeros((height, width), bool),
    )
    rng = np.random.default_rng(scene.texture_seed)
    # Texture noise is drawn on a grid of fixed size and resized, so it does not depend on resolution.
    tex_fine = _value_noise(rng, height, width, 96)
    tex_coarse = _value_noise(rng, height, width, 12)
    canvas = _Canvas(L)
    _ground(scene, L, tex_fine, tex_coarse)
    for b in scene.buildings:
        _building(scene, L, canvas, b, tex_coarse)
    for t in scene.trees:
        canvas.rect(t.x - 0.15, t.x + 0.15, 0.0, t.trunk_height + t.canopy_radius * 0.5, t.z, VEGETATION, (0.30, 0.22, 0.15))
        canvas.ellipse(t.x, t.trunk_height + t.canopy_radius * 0.9, t.canopy_radius, t.canopy_radius * 1.15, t.z - 0.01,
                       VEGETATION, t.color, texture=tex_fine)
    for p in scene.poles:
        _pole(scene, L, canvas, p)
    for c in scene.cars:
        _car(scene, L, canvas, c)
    for p in scene.pedestrians:
        inst = canvas.next_instance
        canvas.next_instance += 1
        L.instance_category[inst] = LABEL_TO_BOX_CATEGORY[PERSON]
        L.instance_depth[inst] = p.z
        h = p.height
        for dx in (-0.11, 0.11):
            canvas.rect(p.x + dx - 0.08, p.x + dx + 0.08, 0.0, 0.47 * h, p.z, PERSON, p.trousers, inst)
        canvas.rect(p.x - 0.21, p.x + 0.21, 0.45 * h, 0.82 * h, p.z, PERSON, p.shirt, inst)
        canvas.ellipse(p.x, 0.9 * h, 0.1 * h, 0.1 * h, p.z, PERSON, (0.72, 0.55, 0.45), inst)
    # Ego headlights: the camera car lights the road ahead (night models only).
    for dx in (-0.7, 0.7):
        L.lights.append(Light((dx, 0.65, 0.0), (1.0, 0.95, 0.85), 18.0, (0.0, -0.08, 1.0), 12.0, glow=0.0, kind="ego"))
    return L


def _ground(scene: Scene, L: SceneLayers, tex_fine: np.ndarray, tex_coarse: np.ndarray) -> None:
    ys = np.arange(L.height, dtype=np.float32) + 0.5
    xs = np.arange(L.width, dtype=np.float32) + 0.5
    rows = ys > L.horizon_px + 0.5
    if not rows.any():
        return
    z = L.focal_px * L.cam_height / (ys[rows] - L.horizon_px)
    z = z[:, None] * np.ones((1, L.width), np.float32)
    x = (xs[None, :] - L.cx) * z / L.focal_px
    visible = z < GROUND_MAX_DEPTH
    rel = x - scene.road_center
    road = np.abs(rel) <= scene.road_half_width
    walk = ~road & (np.abs(rel) <= scene.road_half_width + scene.sidewalk_width)
    label = np.where(road, ROAD, np.where(walk, SIDEWALK, IGNORE)).astype(np.uint8)
    albedo = np.empty(z.shape + (3,), np.float32)
    albedo[:] = (0.36, 0.34, 0.26)  # unlabelled verge
    albedo[road] = scene.asphalt
    albedo[walk] = scene.pavement
    # Paving joints on the sidewalk, a darker curb stone at its inner edge.
    joints = walk & ((z % 1.5) < 0.08)
    albedo[joints] *= 0.8
    curb = walk & (np.abs(rel) <= scene.road_half_width + 0.25)
    albedo[curb] = 0.72
    # Lane marks: dashed lane separators, solid edge lines.
    width = 0.12
    n_lanes = max(1, int(2 * scene.road_half_width // scene.lane_width))
    marks = np.zeros_like(road)
    for k in range(1, n_lanes):
        xb = -scene.road_half_width + k * (2 * scene.road_half_width / n_lanes)
        marks |= (np.abs(rel - xb) < width) & (((z + scene.dash_phase) % 9.0) < 3.0)
    for s in (-1, 1):
        marks |= np.abs(rel - s * (scene.road_half_width - 0.3)) < width
    albedo[marks & road] = (0.85, 0.85, 0.82)
    tex = 1 + 0.08 * tex_fine[rows] + 0.06 * tex_coarse[rows]
    albedo *= tex[..., None]
    sl = (rows, slice(None))
    L.depth[sl] = np.where(visible, z, L.depth[sl])
    L.label[sl] = np.where(visible, label, L.label[sl])
    L.albedo[sl] = np.where(visible[..., None], np.clip(albedo, 0, 1), L.albedo[sl])
    L.surface[sl] = np.where(visible, SURF_GROUND, L.surface[sl])
    # Contact shadows of cars (ambient occlusion on the road under and behind each car).
    shadow = np.ones(z.shape, np.float32)
    for c in scene.cars:
        d = ((x - c.x) / (c.width / 2 + 0.3)) ** 2 + ((z - c.z - 0.9) / 2.6) ** 2
        shadow *= 1 - 0.6 * np.exp(-(d**2))
    L.shadow[sl] = shadow


def _building(scene: Scene, L: SceneLayers, canvas: _Canvas, b, tex_coarse: np.ndarray) -> None:
    xp = scene.sidewalk_outer(b.side) + b.side * b.setback
    tables = np.random.default_rng(b.window_seed).random((2, 64, 128))
    lit, brightness = tables[0] < 0.25, tables[1]
    window_color = np.asarray((0.95, 0.75, 0.45), np.float32) * 0.15  # warm interior light (linear)
    # Facade along the street: a vertical plane X = xp; each column sees one depth.
    xa, _ = L.project(xp, 0.0, b.z1)
    xb_, _ = L.project(xp, 0.0, b.z0)
    reg = canvas.region(min(xa, xb_), max(xa, xb_), 0, L.height)
    if reg is not None:
        rs, cs = reg
        cols = np.arange(cs.start, cs.stop, dtype=np.float32) + 0.5
        with np.errstate(divide="ignore", invalid="ignore"):
            zc = L.focal_px * xp / (cols - L.cx)
        rows = np.arange(rs.start, rs.stop, dtype=np.float32)[:, None] + 0.5
        z = np.broadcast_to(zc[None, :], (rows.shape[0], zc.shape[0])).astype(np.float32)
        y = L.cam_height - (rows - L.horizon_px) * z / L.focal_px
        mask = (z >= b.z0) & (z <= b.z1) & (y >= 0) & (y <= b.height) & np.isfinite(z)
        if mask.any():
            u = np.where(mask, z - b.z0, 0)
            v = np.where(mask, y, 0)
            fu = (u % b.window_pitch) / b.window_pitch
            fv = (v % b.floor_height) / b.floor_height
            window = mask & (fu > 0.25) & (fu < 0.75) & (fv > 0.3) & (fv < 0.78) & (v > b.floor_height * 0.3)
            col = np.empty(mask.shape + (3,), np.float32)
            col[:] = b.color
            col *= (1 + 0.12 * tex_coarse[rs, cs])[..., None]
            # Floor bands make floors readable even where windows are sub-pixel.
            col[mask & (fv < 0.08)] *= 0.85
            col[window] = (0.10, 0.12, 0.15)
            surface = SURF_FACADE_LEFT if b.side < 0 else SURF_FACADE_RIGHT
            win = canvas.paint(rs, cs, mask, z, BUILDING, col, surface)
            wi = np.clip((v // b.floor_height).astype(int), 0, lit.shape[0] - 1)
            wj = np.clip((u // b.window_pitch).astype(int), 0, lit.shape[1] - 1)
            glow = win & window & lit[wi, wj]
            L.emission[rs, cs][glow] = window_color * (0.4 + 0.6 * brightness[wi, wj][glow, None])
    # End wall facing the camera at z0 (seen for blocks that start ahead of us).
    depth = 12.0
    x0, x1 = sorted((xp, xp + b.side * depth))
    canvas.rect(x0, x1, 0.0, b.height, b.z0, BUILDING, tuple(np.asarray(b.color) * 0.8))


def _pole(scene: Scene, L: SceneLayers, canvas: _Canvas, p) -> None:
    gray = (0.45, 0.46, 0.48)
    canvas.rect(p.x - 0.09, p.x + 0.09, 0.0, p.height, p.z, POLE, gray)
    toward_road = 1.0 if p.x < scene.road_center else -1.0
    if p.lamp:
        arm_end = p.x + toward_road * 1.6
        canvas.rect(min(p.x, arm_end), max(p.x, arm_end), p.height - 0.12, p.height, p.z, POLE, gray)
        head = (arm_end - 0.3, arm_end + 0.3, p.height - 0.3, p.height - 0.05)
        emit = tuple(np.asarray(p.lamp_color, np.float32) * 8.0)
        canvas.rect(*head, p.z - 0.02, POLE, (0.9, 0.9, 0.85), emission=emit)
        L.lights.append(Light((arm_end, p.height - 0.25, p.z), p.lamp_color, 9.0, (0.0, -1.0, 0.0), 4.0, glow=4.0, kind="lamp"))
    if p.traffic_light:
        y0 = p.height * 0.55
        canvas.rect(p.x - 0.2, p.x + 0.2, y0, y0 + 1.0, p.z - 0.05, TRAFFIC_LIGHT, (0.12, 0.12, 0.1))
        colors = [(1.0, 0.1, 0.05), (1.0, 0.6, 0.0), (0.1, 1.0, 0.4)]
        for k in range(3):
            on = k == 2 - p.light_state
            yc = y0 + 0.83 - k * 0.33
            c = colors[2 - k]
            canvas.ellipse(p.x, yc, 0.11, 0.11, p.z - 0.1, TRAFFIC_LIGHT,
                           tuple(np.asarray(c) * (0.8 if on else 0.25)),
                           emission=tuple(np.asarray(c, np.float32) * 6.0) if on else None)
            if on:
                L.lights.append(Light((p.x, yc, p.z - 0.1), c, 1.0, glow=3.0, kind="signal"))
    if p.sign:
        canvas.rect(p.x - 0.35, p.x + 0.35, 2.2, 2.9, p.z - 0.05, TRAFFIC_SIGN, p.sign_color)


def _car(scene: Scene, L: SceneLayers, canvas: _Canvas, c) -> None:
    inst = canvas.next_instance
    canvas.next_instance += 1
    L.instance_category[inst] = LABEL_TO_BOX_CATEGORY[CAR]
    L.instance_depth[inst] = c.z
    w2, h = c.width / 2, c.height
    z = c.z
    dark = (0.05, 0.05, 0.05)
    for s in (-1, 1):  # tyres
        canvas.rect(c.x + s * (w2 - 0.4) - 0.17, c.x + s * (w2 - 0.4) + 0.17, 0.0, 0.34, z - 0.01, CAR, dark, inst)
    canvas.rect(c.x - w2, c.x + w2, 0.25, 0.62 * h, z, CAR, c.color, inst)
    # Cabin: a trapezoid narrowing to the roof, drawn as thin horizontal slabs.
    n = 6
    for k in range(n):
        y0 = 0.62 * h + k * 0.38 * h / n
        half = w2 * (0.92 - 0.22 * (k + 0.5) / n)
        canvas.rect(c.x - half, c.x + half, y0, y0 + 0.38 * h / n + 1e-3, z, CAR, c.color, inst)
    glass = (0.10, 0.12, 0.15)
    canvas.rect(c.x - w2 * 0.68, c.x + w2 * 0.68, 0.66 * h, 0.94 * h, z - 0.02, CAR, glass, inst)
    canvas.rect(c.x - 0.25, c.x + 0.25, 0.32, 0.44, z - 0.02, CAR, (0.85, 0.85, 0.8), inst)  # plate
    for s in (-1, 1):
        lx = c.x + s * (w2 - 0.2)
        if c.oncoming:
            col, emit, power = (0.9, 0.9, 0.85), (30.0, 29.0, 26.0), 20.0
            canvas.rect(lx - 0.17, lx + 0.17, 0.5, 0.62, z - 0.03, CAR, col, inst, emission=emit)
            L.lights.append(Light((lx, 0.56, z - 0.1), (1.0, 0.95, 0.85), power, (0.0, -0.05, -1.0), 10.0,
                                  glow=10.0, kind="headlight"))
        else:
            col, emit = (0.55, 0.05, 0.05), (6.0, 0.25, 0.15)
            canvas.rect(lx - 0.17, lx + 0.17, 0.5, 0.68, z - 0.03, CAR, col, inst, emission=emit)
            L.lights.append(Light((lx, 0.6, z - 0.1), (1.0, 0.05, 0.02), 1.5, glow=2.0, kind="tail"))
