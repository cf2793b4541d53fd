"""Seeded description of a procedural driving scene, in world units (metres).

The description is independent of the image size, so one scene renders identically
(up to sampling) at 64x128 or 512x1024, and the day and adverse renderings of one
scene are pixel-aligned by construction.

World frame: X to the right, Y up, Z forward; the camera sits at (0, cam_height, 0)
looking along +Z with a level horizon.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Cityscapes train ids of the classes the renderer draws (255 = ignore).
ROAD, SIDEWALK, BUILDING, POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN = 0, 1, 2, 5, 6, 7
VEGETATION, SKY, PERSON, CAR = 8, 10, 11, 13
IGNORE = 255
CLASS_NAMES: dict[int, str] = {
    ROAD: "road",
    SIDEWALK: "sidewalk",
    BUILDING: "building",
    POLE: "pole",
    TRAFFIC_LIGHT: "traffic light",
    TRAFFIC_SIGN: "traffic sign",
    VEGETATION: "vegetation",
    SKY: "sky",
    PERSON: "person",
    CAR: "car",
}
# Box categories follow COCO's ids so detectors map without a table.
BOX_CATEGORIES: dict[int, str] = {1: "person", 3: "car"}
LABEL_TO_BOX_CATEGORY = {PERSON: 1, CAR: 3}


@dataclass(frozen=True)
class Building:
    side: int  # -1 left, +1 right
    z0: float
    z1: float
    setback: float  # lateral distance of the facade from the sidewalk's outer edge
    height: float
    color: tuple[float, float, float]
    floor_height: float
    window_pitch: float  # metres between window centres along the facade
    window_seed: int  # selects which windows are lit at night


@dataclass(frozen=True)
class Tree:
    x: float
    z: float
    trunk_height: float
    canopy_radius: float
    color: tuple[float, float, float]


@dataclass(frozen=True)
class Pole:
    x: float
    z: float
    height: float
    lamp: bool
    lamp_color: tuple[float, float, float]  # linear RGB of the emitted light
    traffic_light: bool
    light_state: int  # 0 red, 1 amber, 2 green
    sign: bool
    sign_color: tuple[float, float, float]


@dataclass(frozen=True)
class Car:
    x: float
    z: float
    width: float
    height: float
    color: tuple[float, float, float]
    oncoming: bool  # True: seen from the front (headlights), False: from behind (tail lights)


@dataclass(frozen=True)
class Pedestrian:
    x: float
    z: float
    height: float
    shirt: tuple[float, float, float]
    trousers: tuple[float, float, float]


@dataclass(frozen=True)
class Scene:
    horizon: float  # fraction of the image height
    focal: float  # fraction of the image width
    cam_height: float
    road_center: float
    road_half_width: float
    sidewalk_width: float
    lane_width: float
    dash_phase: float
    asphalt: tuple[float, float, float]
    pavement: tuple[float, float, float]
    sky_top: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]
    sun_side: int  # which facade side is sunlit
    buildings: tuple[Building, ...] = field(default_factory=tuple)
    trees: tuple[Tree, ...] = field(default_factory=tuple)
    poles: tuple[Pole, ...] = field(default_factory=tuple)
    cars: tuple[Car, ...] = field(default_factory=tuple)
    pedestrians: tuple[Pedestrian, ...] = field(default_factory=tuple)
    texture_seed: int = 0

    def sidewalk_outer(self, side: int) -> float:
        return self.road_center + side * (self.road_half_width + self.sidewalk_width)


def _color(rng: np.random.Generator, base: tuple[float, float, float], jitter: float) -> tuple[float, float, float]:
    c = np.clip(np.asarray(base) + rng.uniform(-jitter, jitter, 3), 0.02, 0.98)
    return (float(c[0]), float(c[1]), float(c[2]))


_CAR_COLORS = [
    (0.75, 0.75, 0.78), (0.12, 0.12, 0.14), (0.55, 0.08, 0.08), (0.10, 0.20, 0.45),
    (0.85, 0.85, 0.85), (0.35, 0.36, 0.38), (0.15, 0.30, 0.18), (0.80, 0.65, 0.20),
]
_FACADE_COLORS = [
    (0.62, 0.55, 0.48), (0.70, 0.66, 0.60), (0.50, 0.32, 0.25), (0.45, 0.47, 0.50),
    (0.78, 0.74, 0.66), (0.58, 0.45, 0.36), (0.36, 0.38, 0.42),
]
_LAMP_COLORS = [(1.0, 0.62, 0.25), (1.0, 0.85, 0.62), (0.85, 0.92, 1.0)]  # sodium, halogen, LED


def sample_scene(rng: np.random.Generator) -> Scene:
    """Draw one scene; every random choice comes from ``rng`` (so the scene is a function of its seed)."""
    road_half = float(rng.uniform(3.5, 7.0))
    sidewalk = float(rng.uniform(2.0, 4.0))
    road_center = float(rng.uniform(-1.5, 1.5))
    lane_width = float(rng.uniform(3.0, 3.6))
    scene_kw: dict = dict(
        horizon=float(rng.uniform(0.40, 0.50)),
        focal=float(rng.uniform(0.55, 0.75)),
        cam_height=float(rng.uniform(1.3, 1.7)),
        road_center=road_center,
        road_half_width=road_half,
        sidewalk_width=sidewalk,
        lane_width=lane_width,
        dash_phase=float(rng.uniform(0, 9)),
        asphalt=_color(rng, (0.33, 0.33, 0.35), 0.06),
        pavement=_color(rng, (0.62, 0.60, 0.57), 0.06),
        sky_top=_color(rng, (0.35, 0.55, 0.85), 0.08),
        sky_horizon=_color(rng, (0.78, 0.85, 0.93), 0.05),
        sun_side=int(rng.choice([-1, 1])),
        texture_seed=int(rng.integers(0, 2**31 - 1)),
    )
    outer = {s: road_center + s * (road_half + sidewalk) for s in (-1, 1)}

    buildings = []
    for side in (-1, 1):
        z = float(rng.uniform(2.0, 8.0))
        while z < 160.0:
            length = float(rng.uniform(12.0, 40.0))
            if rng.random() < 0.85:  # leave occasional gaps between blocks
                buildings.append(
                    Building(
                        side=side,
                        z0=z,
                        z1=z + length,
                        setback=float(rng.uniform(0.0, 3.0)),
                        height=float(rng.uniform(7.0, 30.0)),
                        color=_color(rng, _FACADE_COLORS[int(rng.integers(len(_FACADE_COLORS)))], 0.05),
                        floor_height=float(rng.uniform(2.8, 3.6)),
                        window_pitch=float(rng.uniform(2.2, 3.5)),
                        window_seed=int(rng.integers(0, 2**31 - 1)),
                    )
                )
            z += length + float(rng.uniform(0.0, 8.0))

    trees = []
    for _ in range(int(rng.integers(2, 9))):
        side = int(rng.choice([-1, 1]))
        trees.append(
            Tree(
                x=outer[side] - side * float(rng.uniform(0.5, 1.2)),
                z=float(rng.uniform(6.0, 70.0)),
                trunk_height=float(rng.uniform(1.8, 3.0)),
                canopy_radius=float(rng.uniform(1.2, 2.8)),
                color=_color(rng, (0.22, 0.42, 0.16), 0.07),
            )
        )

    poles = []
    pole_z = float(rng.uniform(5.0, 15.0))
    spacing = float(rng.uniform(18.0, 30.0))
    while pole_z < 110.0:
        for side in (-1, 1):
            if rng.random() < 0.8:
                poles.append(
                    Pole(
                        x=road_center + side * (road_half + 0.4),
                        z=pole_z + float(rng.uniform(-2, 2)),
                        height=float(rng.uniform(6.0, 8.5)),
                        lamp=bool(rng.random() < 0.85),
                        lamp_color=_LAMP_COLORS[int(rng.integers(len(_LAMP_COLORS)))],
                        traffic_light=bool(rng.random() < 0.15),
                        light_state=int(rng.integers(0, 3)),
                        sign=bool(rng.random() < 0.25),
                        sign_color=[(0.8, 0.1, 0.1), (0.1, 0.3, 0.75), (0.9, 0.75, 0.1)][int(rng.integers(3))],
                    )
                )
        pole_z += spacing

    cars = []
    n_lanes = max(1, int(2 * road_half // lane_width))
    for _ in range(int(rng.integers(2, 8))):
        lane = int(rng.integers(n_lanes))
        x = road_center - road_half + (lane + 0.5) * (2 * road_half / n_lanes)
        parked = rng.random() < 0.25
        if parked:
            side = int(rng.choice([-1, 1]))
            x = road_center + side * (road_half - 1.1)
        z = float(rng.uniform(5.0, 80.0))
        if any(abs(c.z - z) < 6.0 and abs(c.x - x) < 2.2 for c in cars):
            continue  # keep cars from interpenetrating
        cars.append(
            Car(
                x=float(x + rng.uniform(-0.3, 0.3)),
                z=z,
                width=float(rng.uniform(1.7, 2.0)),
                height=float(rng.uniform(1.4, 1.7)),
                color=_color(rng, _CAR_COLORS[int(rng.integers(len(_CAR_COLORS)))], 0.04),
                oncoming=bool((x < road_center) and not parked),
            )
        )

    pedestrians = []
    for _ in range(int(rng.integers(0, 6))):
        side = int(rng.choice([-1, 1]))
        pedestrians.append(
            Pedestrian(
                x=road_center + side * (road_half + float(rng.uniform(0.6, sidewalk - 0.3))),
                z=float(rng.uniform(5.0, 45.0)),
                height=float(rng.uniform(1.55, 1.9)),
                shirt=_color(rng, (0.5, 0.4, 0.4), 0.35),
                trousers=_color(rng, (0.2, 0.2, 0.3), 0.15),
            )
        )

    return Scene(
        buildings=tuple(buildings),
        trees=tuple(trees),
        poles=tuple(poles),
        cars=tuple(cars),
        pedestrians=tuple(pedestrians),
        **scene_kw,
    )
