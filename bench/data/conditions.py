"""Lighting, weather and camera models that turn :class:`SceneLayers` into images.

Everything is computed in linear radiance and passed through a camera (exposure, sensor
noise, response curve, 8-bit quantisation) so that the adverse images lose information the
way real ones do: dark regions sink under the noise floor and the response curve's toe,
highlights clip and bloom, rain streaks and droplets hide structure, fog erases distance.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from bench.data.raster import (
    SKY_DEPTH,
    SURF_FACADE_LEFT,
    SURF_FACADE_RIGHT,
    SURF_FRONT,
    SURF_GROUND,
    SURF_SKY,
    Light,
    SceneLayers,
)
from bench.data.scene import ROAD, Scene

CONDITIONS = ("day", "night", "rain", "fog")


def to_linear(display: np.ndarray) -> np.ndarray:
    return np.power(np.clip(display, 0, 1), 2.2)


def _blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    if sigma_px <= 0.05:
        return img
    return cv2.GaussianBlur(img, (0, 0), sigmaX=float(sigma_px), borderType=cv2.BORDER_REFLECT)


def _normals(L: SceneLayers) -> np.ndarray:
    n = np.zeros((L.height, L.width, 3), np.float32)
    n[L.surface == SURF_GROUND] = (0, 1, 0)
    n[L.surface == SURF_FACADE_LEFT] = (1, 0, 0)  # left facades face +X, towards the road
    n[L.surface == SURF_FACADE_RIGHT] = (-1, 0, 0)
    n[L.surface == SURF_FRONT] = (0, 0, -1)
    return n


def _sky(L: SceneLayers, top, horizon) -> np.ndarray:
    t = np.clip((np.arange(L.height, dtype=np.float32) + 0.5) / max(L.horizon_px, 1.0), 0, 1)[:, None, None]
    return (np.asarray(top, np.float32) * (1 - t) + np.asarray(horizon, np.float32) * t) * np.ones((1, L.width, 1), np.float32)


def day_radiance(scene: Scene, L: SceneLayers) -> np.ndarray:
    """Linear radiance under overcast-to-sunny daylight (ambient sky light plus a sun term)."""
    irr = np.full((L.height, L.width), 0.55, np.float32)
    irr[L.surface == SURF_GROUND] += 0.42
    sunlit = SURF_FACADE_LEFT if scene.sun_side < 0 else SURF_FACADE_RIGHT
    irr[L.surface == sunlit] += 0.35
    irr[L.surface == SURF_FRONT] += 0.25
    irr *= L.shadow
    rad = to_linear(L.albedo) * irr[..., None]
    sky = L.surface == SURF_SKY
    rad[sky] = to_linear(_sky(L, scene.sky_top, scene.sky_horizon))[sky]
    return rad


def _light_irradiance(L: SceneLayers, lights: list[Light], wx, wy, normals) -> np.ndarray:
    # One H x W plane per axis: numpy reduces a length-3 last axis several times slower than it adds
    # planes. Each 3-term sum keeps the order of numpy's reduction, (x + y) + z, so the bytes stay
    # those of the (H, W, 3) formulation.
    px, py, pz = wx, wy, np.minimum(L.depth, 400.0)
    nx, ny, nz = normals[..., 0], normals[..., 1], normals[..., 2]
    irr = np.zeros((L.height, L.width, 3), np.float32)
    for light in lights:
        lx, ly, lz = np.asarray(light.position, np.float32)
        vx, vy, vz = lx - px, ly - py, lz - pz
        d2 = vx * vx + vy * vy + vz * vz + 0.3
        d = np.sqrt(d2)
        cos = np.clip((nx * vx + ny * vy + nz * vz) / d, 0, 1)
        e = light.power * cos / d2
        if light.direction is not None:
            direction = np.asarray(light.direction, np.float32)
            ux, uy, uz = direction / np.linalg.norm(direction)
            spot = np.clip((-vx * ux + -vy * uy + -vz * uz) / d, 0, 1) ** light.cone_exponent
            e = e * spot
        irr += e[..., None] * np.asarray(light.color, np.float32)
    irr[L.surface == SURF_SKY] = 0
    return irr


def _glowing(lights: list[Light]):
    """Light sources the camera sees as bright spots, with their apparent strength (dimmer far away)."""
    for light in lights:
        if light.glow > 0:
            yield light, light.position, light.glow * min(1.0, 12.0 / light.position[2])


def _glare(L: SceneLayers, lights: list[Light], scale: float) -> np.ndarray:
    """Glow around visible light sources: a sharp core and a wide halo (veiling glare)."""
    sprites = np.zeros((L.height, L.width, 3), np.float32)
    for light, (x, y, z), strength in _glowing(lights):
        px, py = L.project(x, y, z)
        if not (0 <= px < L.width and 0 <= py < L.height):
            continue
        # A source hidden behind something nearer (a car, a pole) does not flare.
        if L.depth[int(py), int(px)] < z - 0.5:
            continue
        sprites[int(py), int(px)] += np.asarray(light.color, np.float32) * strength * 5.0
    core = _blur(sprites, 0.8 * scale)
    halo = _blur(sprites, 4.0 * scale)
    wide = _blur(sprites, 12.0 * scale)
    return core + 0.25 * halo + 0.05 * wide


def night_radiance(scene: Scene, L: SceneLayers, rng: np.random.Generator, wet: bool = False) -> np.ndarray:
    """Linear radiance at night: weak moonlight, street-lamp pools, headlights, lit windows and glare."""
    scale = L.width / 256.0
    albedo = to_linear(L.albedo)
    if wet:
        # Wet asphalt is darker (water fills the pores) and mirror-like.
        albedo[L.label == ROAD] *= 0.55
    wx, wy = L.world_xy()
    normals = _normals(L)
    moon = np.asarray((0.6, 0.7, 1.0), np.float32) * float(rng.uniform(0.004, 0.01))
    irr = moon + _light_irradiance(L, L.lights, wx, wy, normals)
    irr *= (0.5 + 0.5 * L.shadow)[..., None]
    rad = albedo * irr + L.emission
    sky = L.surface == SURF_SKY
    # Light pollution: the sky glows orange near the horizon.
    glow = float(rng.uniform(0.004, 0.015))
    rad[sky] = to_linear(_sky(L, (0.02, 0.03, 0.06), (0.25, 0.17, 0.1)))[sky] * glow * 10
    rad += _glare(L, L.lights, scale)
    if wet:
        rad += _wet_reflections(L, L.lights, scale)
    return rad


def _wet_reflections(L: SceneLayers, lights: list[Light], scale: float) -> np.ndarray:
    """Specular reflections of light sources on the wet road: long vertical streaks below each source."""
    refl = np.zeros((L.height, L.width, 3), np.float32)
    for light, (x, y, z), strength in _glowing(lights):
        px, _ = L.project(x, y, z)
        _, py_ground = L.project(x, 0.0, z)
        _, py_mirror = L.project(x, -y, z)
        if not (0 <= px < L.width):
            continue
        r0, r1 = int(max(py_ground, 0)), int(min(L.height, py_mirror + (py_mirror - py_ground) * 1.5 + 1))
        if r0 >= r1:
            continue
        rows = np.arange(r0, r1, dtype=np.float32)
        center = py_mirror
        length = max(2.0, (py_mirror - py_ground) * 1.2)
        profile = np.exp(-(((rows - center) / length) ** 2))
        col = int(px)
        refl[r0:r1, col] += profile[:, None] * np.asarray(light.color, np.float32) * strength * 0.25
    refl = cv2.GaussianBlur(refl, (0, 0), sigmaX=max(0.7, 1.2 * scale), sigmaY=max(0.5, 0.6 * scale))
    refl[L.label != ROAD] *= 0.15
    return refl


def _rain(L: SceneLayers, rad: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rain streaks lit by the scene's lights, and lens droplets that blur what lies behind them."""
    scale = L.width / 256.0
    h, w = L.height, L.width
    ambient = _blur(rad, 6.0 * scale)
    mask = np.zeros((h, w), np.float32)
    angle = float(rng.uniform(-0.35, 0.35))
    for _ in range(int(rng.uniform(250, 500) * scale * scale)):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        length = rng.uniform(5, 14) * scale
        x1, y1 = x0 + np.sin(angle) * length, y0 + np.cos(angle) * length
        cv2.line(mask, (int(x0), int(y0)), (int(x1), int(y1)), float(rng.uniform(0.2, 0.6)), 1, cv2.LINE_AA)
    rad = rad * (1 - 0.3 * mask[..., None]) + mask[..., None] * (0.9 * ambient + 0.01)
    # Droplets on the windscreen: discs through which the scene is smeared.
    smeared = _blur(rad, 4.0 * scale)
    drops = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(4, 10))):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(3, 11) * scale
        cv2.circle(drops, (int(cx), int(cy)), max(1, int(r)), 1.0, -1, cv2.LINE_AA)
    drops = _blur(drops, 0.7 * scale)[..., None]
    rad = rad * (1 - drops) + smeared * drops * 1.1
    # A wet windscreen scatters light: stronger veiling glare.
    return rad + 0.08 * _blur(rad, 10.0 * scale)


def fog_radiance(scene: Scene, L: SceneLayers, rng: np.random.Generator) -> np.ndarray:
    """Koschmieder's law, I = J t + A (1 - t) with t = exp(-beta z), plus forward-scatter blur."""
    scale = L.width / 256.0
    day = day_radiance(scene, L) * float(rng.uniform(0.55, 0.8))  # fog dims the sun
    beta = float(rng.uniform(0.035, 0.09))  # meteorological visibility 3/beta: ~33-86 m
    airlight = np.asarray((0.62, 0.64, 0.66), np.float32) * float(rng.uniform(0.8, 1.05))
    depth = np.where(L.depth >= SKY_DEPTH, np.inf, L.depth)
    t = np.exp(-beta * depth)[..., None].astype(np.float32)
    rad = day * t + airlight * (1 - t)
    scatter = (1 - t) * 0.5
    return rad * (1 - scatter) + _blur(rad, 3.0 * scale) * scatter


def camera(
    rad: np.ndarray,
    rng: np.random.Generator,
    exposure: float = 1.0,
    shot: float = 0.0,
    read: float = 0.0,
    black: float = 0.0,
    shoulder: float = 0.0,
) -> np.ndarray:
    """Sensor and camera response: gain, shot + read noise, black level, gamma 2.2, highlight shoulder.

    Returns display values in [0, 1], already quantised to 8 bits (as a real camera writes them).
    """
    x = rad * exposure
    if shot > 0 or read > 0:
        sigma = np.sqrt(np.maximum(x, 0) * shot + read**2)
        x = x + rng.standard_normal(x.shape).astype(np.float32) * sigma
    x = np.clip((x - black) / (1 - black), 0, None)
    if shoulder > 0:
        x = x / (1 + shoulder * x)  # compresses highlights only: ~identity for dark values
    y = np.power(x, 1 / 2.2)
    return np.round(np.clip(y, 0, 1) * 255) / 255.0


Renderer = Callable[[Scene, SceneLayers, np.random.Generator], np.ndarray]


def render_condition(scene: Scene, L: SceneLayers, condition: str, rng: np.random.Generator) -> np.ndarray:
    """Render ``condition`` ('day', 'night', 'rain' = rainy night, 'fog') as an H x W x 3 float image in [0, 1]."""
    if condition == "day":
        return camera(day_radiance(scene, L), rng, read=0.003)
    if condition == "night":
        rad = night_radiance(scene, L, rng)
        gain = float(rng.uniform(2.0, 4.0))  # auto-exposure pushes the gain, and with it the noise
        return camera(rad, rng, exposure=gain, shot=0.003 * gain, read=0.0012 * gain, black=0.003, shoulder=0.5)
    if condition == "rain":
        rad = _rain(L, night_radiance(scene, L, rng, wet=True), rng)
        gain = float(rng.uniform(2.0, 4.0))
        return camera(rad, rng, exposure=gain, shot=0.004 * gain, read=0.0015 * gain, black=0.003, shoulder=0.5)
    if condition == "fog":
        return camera(fog_radiance(scene, L, rng), rng, shot=0.002, read=0.006)
    raise ValueError(f"unknown condition {condition!r}; expected one of {', '.join(CONDITIONS)}")
