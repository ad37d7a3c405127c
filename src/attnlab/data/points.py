"""Point clouds for classification: procedural shapes (offline, the default) and ModelNet10/40.

A point cloud is a *set* of points in 3-D: the order in which its points are listed
carries no meaning, and two clouds of the same object may have different numbers of
points. Both show in how a batch is stored here:

    points (N, P, 3) float32   xyz of each point; clouds shorter than P are padded with zeros
    mask   (N, P)    bool      True = a real point, False = padding (the library's mask convention)
    labels (N,)      int64     class ids

Procedural shapes (`make_shapes`, data set name "shapes"): eight classes (`SHAPE_CLASSES`:
sphere, cube, cylinder, cone, torus, pyramid, capsule, helix), each sampled uniformly on
its surface (area-weighted), then

  1. partial occlusion: with probability `occlusion_prob` the part of the cloud beyond a
     random plane is removed (a random 0 to `max_occlusion` share of it, as a depth
     sensor sees only one side of an object);
  2. random scale: one factor in [1 - scale_range, 1 + scale_range] times a per-axis
     factor in [0.9, 1.1] (a slightly squashed or stretched shape);
  3. random rotation: about the vertical z axis ("z", the ModelNet convention of upright
     objects), any rotation ("so3", uniform on SO(3)) or none;
  4. jitter: Gaussian noise of std `jitter` on every coordinate, clipped at 5 std;
  5. centring on the cloud's mean.

Each cloud has a random number of points in [min_points, max_points] and its points in
random order. Cloud i of a split is drawn from its own generator, seeded by
(seed, split, class, index): the same seed gives the same clouds, bit for bit, and the
test split (split id 1) does not depend on how many training clouds are asked for, so it is
a fixed held-out set for every run with that seed (`DEFAULT_SEED` = 0).

ModelNet (Wu et al. 2015, "3D ShapeNets"): `load_modelnet("modelnet10" | "modelnet40")`
reads the official archive (OFF meshes in NAME/CLASS/{train,test}/*.off, the standard
train/test split: ModelNet10 3,991 / 908 meshes, ModelNet40 9,843 / 2,468), downloaded once
into the cache through `attnlab.data.download.fetch`, or a local zip / extracted folder.
Every mesh is sampled to `num_points` surface points (area-weighted, seeded), centred and
scaled into the unit ball, as in the PointNet paper (Qi et al. 2017).

Torch-free (the base layer).

Notation: N clouds, P points per cloud (padded), K classes, V vertices, F faces.
"""

from __future__ import annotations

import io
import logging
import math
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from attnlab.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

__all__ = [
    "SHAPE_CLASSES",
    "DEFAULT_SEED",
    "MODELNET",
    "PointCloudSplit",
    "PointCloudDataset",
    "ShapeSettings",
    "sample_shape",
    "make_shapes",
    "pad_clouds",
    "random_rotation",
    "parse_off",
    "sample_mesh_surface",
    "load_modelnet",
    "load_point_clouds",
]

SHAPE_CLASSES = ("sphere", "cube", "cylinder", "cone", "torus", "pyramid", "capsule", "helix")
DEFAULT_SEED = 0  # the seed of the documented procedural set
_SPLIT_IDS = {"train": 0, "test": 1}

Rotation = Literal["z", "so3", "none"]


# ---------------------------------------------------------------------------
# Containers
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PointCloudSplit:
    """One split: padded points (N, P, 3) float32, mask (N, P) bool (True = real), labels (N,) int64."""

    points: np.ndarray
    mask: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def counts(self) -> np.ndarray:
        """(N,) the number of real points of each cloud."""
        return self.mask.sum(axis=1)


@dataclass(frozen=True)
class PointCloudDataset:
    """A train and a test split with their class names and where they came from."""

    name: str
    train: PointCloudSplit
    test: PointCloudSplit
    class_names: tuple[str, ...]
    source: str = ""
    settings: dict = field(default_factory=dict)  # how it was made (seed, counts, augmentation)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def max_points(self) -> int:
        """P, the padded length of every cloud."""
        return int(self.train.points.shape[1])

    @property
    def min_points(self) -> int:
        """The fewest real points of any cloud, in either split."""
        return int(min(self.train.counts.min(), self.test.counts.min()))

    def summary(self) -> str:
        return (
            f"{self.name}: {len(self.train):,} train / {len(self.test):,} test clouds, {self.num_classes} classes, "
            f"{self.min_points} to {self.max_points} points per cloud"
        )


# ---------------------------------------------------------------------------
# Procedural shapes
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ShapeSettings:
    """How the procedural clouds are drawn (the defaults are the documented set)."""

    min_points: int = 192  # fewest points of a cloud
    max_points: int = 256  # most points of a cloud (the padded length P)
    rotation: Rotation = "z"  # random rotation: about the z axis, any (so3) or none
    scale_range: float = 0.25  # overall scale drawn from [1 - r, 1 + r]
    jitter: float = 0.01  # std of the Gaussian noise added to every coordinate
    occlusion_prob: float = 0.5  # chance that part of a cloud is cut away
    max_occlusion: float = 0.3  # largest share of a cloud that a cut removes

    def __post_init__(self) -> None:
        if not 1 <= self.min_points <= self.max_points:
            raise ConfigError(
                f"min_points ({self.min_points}) must be at least 1 and at most max_points ({self.max_points})"
            )
        if self.max_points > 1_000_000:
            raise ConfigError(f"max_points must be at most 1,000,000, got {self.max_points}")
        if self.rotation not in ("z", "so3", "none"):
            raise ConfigError(f"rotation must be 'z', 'so3' or 'none', got {self.rotation!r}")
        if not 0.0 <= self.scale_range < 1.0:
            raise ConfigError(f"scale_range must be in [0, 1), got {self.scale_range}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ConfigError(f"jitter must be in [0, 1], got {self.jitter}")
        if not 0.0 <= self.occlusion_prob <= 1.0 or not 0.0 <= self.max_occlusion < 1.0:
            raise ConfigError("occlusion_prob must be in [0, 1] and max_occlusion in [0, 1)")


def _unit_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True).clip(1e-12)


def _disk(n: int, radius: float, z: float, rng: np.random.Generator) -> np.ndarray:
    r = radius * np.sqrt(rng.random(n))  # sqrt: uniform over the disk's area
    a = rng.uniform(0, 2 * np.pi, n)
    return np.stack([r * np.cos(a), r * np.sin(a), np.full(n, z)], axis=1)


def _triangles(corners: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` points uniform on the triangles (T, 3, 3), area-weighted."""
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    areas = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    pick = rng.choice(len(corners), size=n, p=areas / areas.sum())
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1  # fold the unit square onto the triangle
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    return a[pick] + u[:, None] * (b - a)[pick] + v[:, None] * (c - a)[pick]


def _split_counts(n: int, areas: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """How many of `n` points land on each part, in proportion to the parts' areas."""
    p = np.asarray(areas, dtype=np.float64)
    return rng.multinomial(n, p / p.sum())


def sample_shape(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` points uniform on the surface of shape `name` (one of SHAPE_CLASSES), about unit size.

    Returns:
        (n, 3) float64 points in random order, in the shape's own frame (z up).
    """
    if name == "sphere":
        pts = _unit_vectors(n, rng)
    elif name == "cube":
        s = 0.75
        face = rng.integers(0, 6, n)
        uv = rng.uniform(-s, s, (n, 2))
        pts = np.empty((n, 3))
        axis, sign = face // 2, np.where(face % 2 == 0, 1.0, -1.0)
        for k in range(3):
            rows = axis == k
            others = [j for j in range(3) if j != k]
            pts[rows, k] = sign[rows] * s
            pts[np.ix_(rows, others)] = uv[rows]
    elif name in ("cylinder", "capsule"):
        r, h = (0.6, 1.6) if name == "cylinder" else (0.45, 1.0)
        ends = 2 * np.pi * r * r if name == "cylinder" else 4 * np.pi * r * r  # caps or two hemispheres
        side, cap = _split_counts(n, [2 * np.pi * r * h, ends], rng)
        a = rng.uniform(0, 2 * np.pi, side)
        tube = np.stack([r * np.cos(a), r * np.sin(a), rng.uniform(-h / 2, h / 2, side)], axis=1)
        if name == "cylinder":
            top = rng.random(cap) < 0.5
            caps = _disk(cap, r, h / 2, rng)
            caps[~top, 2] = -h / 2
        else:
            caps = r * _unit_vectors(cap, rng)
            caps[:, 2] += np.where(caps[:, 2] >= 0, h / 2, -h / 2)  # split the sphere into two end domes
        pts = np.concatenate([tube, caps])
    elif name == "cone":
        r, h = 0.7, 1.6
        slant = math.hypot(r, h)
        side, base = _split_counts(n, [np.pi * r * slant, np.pi * r * r], rng)
        t = np.sqrt(rng.random(side))  # distance from the apex, uniform over the lateral area
        a = rng.uniform(0, 2 * np.pi, side)
        lateral = np.stack([r * t * np.cos(a), r * t * np.sin(a), h / 2 - h * t], axis=1)
        pts = np.concatenate([lateral, _disk(base, r, -h / 2, rng)])
    elif name == "torus":
        R, r = 0.7, 0.25
        u, v = [], []
        while sum(len(x) for x in u) < n:  # rejection: the area element is (R + r cos v) du dv
            cu, cv = rng.uniform(0, 2 * np.pi, 2 * n), rng.uniform(0, 2 * np.pi, 2 * n)
            keep = rng.random(2 * n) < (R + r * np.cos(cv)) / (R + r)
            u.append(cu[keep])
            v.append(cv[keep])
        uu, vv = np.concatenate(u)[:n], np.concatenate(v)[:n]
        ring = R + r * np.cos(vv)
        pts = np.stack([ring * np.cos(uu), ring * np.sin(uu), r * np.sin(vv)], axis=1)
    elif name == "pyramid":
        s, zb, za = 0.7, -0.6, 0.8
        base = np.array([[-s, -s, zb], [s, -s, zb], [s, s, zb], [-s, s, zb]])
        apex = np.array([0.0, 0.0, za])
        tris = [np.stack([base[i], base[(i + 1) % 4], apex]) for i in range(4)]
        tris += [np.stack([base[0], base[1], base[2]]), np.stack([base[0], base[2], base[3]])]
        pts = _triangles(np.stack(tris), n, rng)
    elif name == "helix":
        R, turns, height, tube = 0.6, 3.0, 1.6, 0.08
        t = rng.random(n)
        a = 2 * np.pi * turns * t
        centre = np.stack([R * np.cos(a), R * np.sin(a), height * (t - 0.5)], axis=1)
        pts = centre + tube * _unit_vectors(n, rng)  # points on a thin tube around the curve
    else:
        raise ConfigError(f"unknown shape {name!r}; choose one of: {', '.join(SHAPE_CLASSES)}")
    return pts[rng.permutation(n)]


def random_rotation(kind: Rotation, rng: np.random.Generator) -> np.ndarray:
    """A (3, 3) rotation matrix: about z by a uniform angle, uniform on SO(3), or the identity."""
    if kind == "none":
        return np.eye(3)
    if kind == "z":
        a = rng.uniform(0, 2 * np.pi)
        c, s = math.cos(a), math.sin(a)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))  # makes the draw uniform (Haar measure)
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _one_cloud(label: int, settings: ShapeSettings, rng: np.random.Generator) -> np.ndarray:
    count = int(rng.integers(settings.min_points, settings.max_points + 1))
    cut = 0.0
    if rng.random() < settings.occlusion_prob:
        cut = float(rng.uniform(0.0, settings.max_occlusion))
    drawn = math.ceil(count / (1.0 - cut)) + 1
    pts = sample_shape(SHAPE_CLASSES[label], drawn, rng)
    if cut > 0:
        depth = pts @ _unit_vectors(1, rng)[0]  # distance along a random viewing direction
        pts = pts[np.argsort(depth, kind="stable")[: len(pts) - int(cut * len(pts))]]
    pts = pts[rng.permutation(len(pts))[:count]]
    scale = rng.uniform(1 - settings.scale_range, 1 + settings.scale_range) * rng.uniform(0.9, 1.1, 3)
    pts = (pts * scale) @ random_rotation(settings.rotation, rng).T
    if settings.jitter > 0:
        pts = pts + np.clip(rng.normal(0, settings.jitter, pts.shape), -5 * settings.jitter, 5 * settings.jitter)
    return pts - pts.mean(axis=0)


def pad_clouds(clouds: Sequence[np.ndarray], length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stack clouds of different sizes into (N, P, 3) float32 points and an (N, P) mask (True = real).

    Args:
        clouds: N arrays (n_i, 3).
        length: P; None = the largest n_i.
    Raises:
        DataError: a cloud that is not (n, 3) or that is longer than `length`.
    """
    sizes = [len(c) for c in clouds]
    P = max(sizes, default=0) if length is None else length
    points = np.zeros((len(clouds), P, 3), dtype=np.float32)
    mask = np.zeros((len(clouds), P), dtype=bool)
    for i, c in enumerate(clouds):
        c = np.asarray(c)
        if c.ndim != 2 or c.shape[1] != 3:
            raise DataError(f"cloud {i} has shape {c.shape}; each cloud must be (n, 3) xyz points")
        if len(c) > P:
            raise DataError(f"cloud {i} has {len(c)} points, more than the padded length {P}")
        points[i, : len(c)] = c
        mask[i, : len(c)] = True
    return points, mask


def _make_split(split: str, per_class: int, seed: int, settings: ShapeSettings) -> PointCloudSplit:
    K = len(SHAPE_CLASSES)
    clouds, labels = [], []
    for i in range(per_class):
        for k in range(K):  # interleaved classes: any prefix is balanced
            rng = np.random.default_rng([seed, _SPLIT_IDS[split], k, i])
            clouds.append(_one_cloud(k, settings, rng))
            labels.append(k)
    points, mask = pad_clouds(clouds, settings.max_points)
    return PointCloudSplit(points, mask, np.asarray(labels, dtype=np.int64))


def make_shapes(
    num_train_per_class: int = 250,
    num_test_per_class: int = 50,
    *,
    seed: int = DEFAULT_SEED,
    settings: ShapeSettings | None = None,
) -> PointCloudDataset:
    """The procedural shape set: 8 classes, fixed held-out split, deterministic per seed.

    Args:
        num_train_per_class: training clouds per class (default 250: 2,000 in all).
        num_test_per_class: test clouds per class (default 50: 400 in all).
        seed: the seed of every draw (`DEFAULT_SEED` = 0 is the documented set).
        settings: point counts and augmentation (`ShapeSettings()` by default).
    Returns:
        A `PointCloudDataset` named "shapes".
    """
    settings = settings or ShapeSettings()
    for name, value in (("num_train_per_class", num_train_per_class), ("num_test_per_class", num_test_per_class)):
        if not 1 <= value <= 1_000_000:
            raise ConfigError(f"{name} must be between 1 and 1,000,000, got {value}")
    train = _make_split("train", num_train_per_class, seed, settings)
    test = _make_split("test", num_test_per_class, seed, settings)
    return PointCloudDataset(
        "shapes",
        train,
        test,
        SHAPE_CLASSES,
        source=f"procedural shapes (attnlab.data.points, seed {seed})",
        settings={
            "seed": seed,
            "num_train_per_class": num_train_per_class,
            "num_test_per_class": num_test_per_class,
            **settings.__dict__,
        },
    )


# ---------------------------------------------------------------------------
# ModelNet
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _RemoteArchive:
    url: str
    filename: str
    sha256: str | None  # None: not pinned yet (the download is then not checked)
    num_train: int
    num_test: int


MODELNET: dict[str, _RemoteArchive] = {
    "modelnet10": _RemoteArchive(
        "http://3dvision.princeton.edu/projects/2014/3DShapeNets/ModelNet10.zip", "ModelNet10.zip", None, 3991, 908
    ),
    "modelnet40": _RemoteArchive("http://modelnet.cs.princeton.edu/ModelNet40.zip", "ModelNet40.zip", None, 9843, 2468),
}
_MODELNET_SUBDIR = "modelnet"
_OFF_PATH = re.compile(r"(?:^|/)([^/]+)/(train|test)/([^/]+)\.off$", re.IGNORECASE)


def parse_off(text: str, name: str = "mesh") -> tuple[np.ndarray, np.ndarray]:
    """Read an OFF mesh (Object File Format) into vertices and triangles.

    Accepts ModelNet's known quirk of a header fused with the counts ("OFF490 518 0").
    Polygons with more than three corners are split into a fan of triangles.

    Args:
        text: the file's contents.
        name: the file's name, for error messages.
    Returns:
        (V, 3) float64 vertices, (F, 3) int64 triangle corner indices.
    Raises:
        DataError: not an OFF file, wrong counts, or face indices out of range.
    """
    lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines or not lines[0].upper().startswith("OFF"):
        raise DataError(f"{name} is not an OFF mesh: it must start with 'OFF'")
    head = lines[0][3:].split()
    rest = lines[1:]
    if not head:
        if not rest:
            raise DataError(f"{name}: the OFF header has no vertex and face counts")
        head, rest = rest[0].split(), rest[1:]
    try:
        num_vertices, num_faces = int(head[0]), int(head[1])
    except (ValueError, IndexError):
        raise DataError(f"{name}: the OFF counts line must be 'vertices faces edges', got {' '.join(head)!r}") from None
    if num_vertices < 3 or num_faces < 1 or len(rest) < num_vertices + num_faces:
        raise DataError(
            f"{name}: the header promises {num_vertices} vertices and {num_faces} faces, "
            f"but the file has {len(rest)} data lines"
        )
    vertex_lines, face_lines = rest[:num_vertices], rest[num_vertices : num_vertices + num_faces]
    try:
        flat = np.array(" ".join(vertex_lines).split(), dtype=np.float64)
        if flat.size == 3 * num_vertices:  # the usual layout: x y z on each line, read at once
            vertices = flat.reshape(num_vertices, 3)
        else:  # extra columns (colours) or a short line
            vertices = np.array([ln.split()[:3] for ln in vertex_lines], dtype=np.float64)
        flat_faces = np.array(" ".join(face_lines).split(), dtype=np.int64)
        if flat_faces.size == 4 * num_faces and (flat_faces[::4] == 3).all():  # all triangles (ModelNet)
            faces = flat_faces.reshape(num_faces, 4)[:, 1:]
        else:
            triangles = []
            for ln in face_lines:
                values = [int(v) for v in ln.split()]
                corners = values[1 : 1 + values[0]]
                if values[0] < 3 or len(corners) != values[0]:
                    raise ValueError(ln)
                triangles += [(corners[0], corners[j], corners[j + 1]) for j in range(1, len(corners) - 1)]
            faces = np.asarray(triangles, dtype=np.int64)
    except ValueError:
        raise DataError(f"{name}: a vertex or face line is not numbers of the OFF layout") from None
    if vertices.shape != (num_vertices, 3):
        raise DataError(f"{name}: every vertex line needs three coordinates")
    if faces.min() < 0 or faces.max() >= num_vertices:
        raise DataError(f"{name}: a face names a vertex outside 0 .. {num_vertices - 1}")
    return vertices, faces


def sample_mesh_surface(
    vertices: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator, name: str = "mesh"
) -> np.ndarray:
    """`n` points uniform on a triangle mesh's surface (area-weighted), centred and scaled into the unit ball.

    Raises:
        DataError: a mesh whose triangles have no area.
    """
    corners = vertices[faces]  # (F, 3, 3)
    areas = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    if not np.isfinite(areas).all() or areas.sum() <= 0:
        raise DataError(f"{name}: the mesh has no surface area to sample points from")
    pts = _triangles(corners, n, rng)
    pts = pts - pts.mean(axis=0)
    return pts / max(float(np.linalg.norm(pts, axis=1).max()), 1e-12)


def _archive_members(path: Path) -> tuple[list[tuple[str, str, str]], object]:
    """(class, split, member name) of every OFF file in a zip or folder, and a reader for a member."""
    if path.is_dir():
        names = sorted(str(p.relative_to(path)).replace("\\", "/") for p in path.rglob("*.off"))

        def read(member: str) -> str:
            return (path / member).read_text(encoding="utf-8", errors="replace")
    elif zipfile.is_zipfile(path):
        archive = zipfile.ZipFile(path)
        names = sorted(n for n in archive.namelist() if n.lower().endswith(".off"))

        def read(member: str) -> str:
            return io.TextIOWrapper(archive.open(member), encoding="utf-8", errors="replace").read()
    else:
        raise DataError(f"{str(path)!r} is neither a zip archive nor a folder of ModelNet OFF files")
    members = []
    for n in names:
        m = _OFF_PATH.search(n)
        if m and not n.split("/")[-1].startswith("."):  # skip macOS "._" resource files
            members.append((m.group(1), m.group(2).lower(), n))
    if not members:
        raise DataError(f"{str(path)!r} holds no CLASS/train/*.off or CLASS/test/*.off meshes (the ModelNet layout)")
    return members, read


def load_modelnet(
    variant: str = "modelnet10",
    *,
    path: str | Path | None = None,
    num_points: int = 1024,
    seed: int = DEFAULT_SEED,
) -> PointCloudDataset:
    """ModelNet10 or ModelNet40 with the official train/test split, sampled to `num_points` points a mesh.

    Args:
        variant: "modelnet10" or "modelnet40".
        path: a local ModelNet zip or extracted folder; None downloads the official archive once into
            the cache (`attnlab.data.download.fetch`; ATTNLAB_OFFLINE=1 forbids it).
        num_points: points sampled on each mesh's surface.
        seed: seeds the surface sampling (mesh i uses the generator (seed, i)).
    Returns:
        A `PointCloudDataset`; every cloud has exactly `num_points` points (the mask is all True).
    Raises:
        DataError: a malformed OFF file (named in the message), a split with no meshes, or a bad archive.
        DownloadError: no cached copy and no network.
    """
    if variant not in MODELNET:
        raise ConfigError(f"unknown ModelNet variant {variant!r}; choose one of: {', '.join(MODELNET)}")
    if not 1 <= num_points <= 100_000:
        raise ConfigError(f"num_points must be between 1 and 100,000, got {num_points}")
    remote = MODELNET[variant]
    if path is None:
        from attnlab.data.download import fetch

        if remote.sha256 is None:
            logger.warning("the %s archive has no pinned sha256 yet; its download is not checked", variant)
        source_path = fetch(remote.url, remote.sha256, remote.filename, subdir=_MODELNET_SUBDIR)
        source = f"{variant} (Wu et al. 2015), official split, from {remote.url}"
    else:
        source_path = Path(path)
        if not source_path.exists():
            raise DataError(f"{str(source_path)!r} does not exist; pass a ModelNet zip or its extracted folder")
        source = f"{variant} (Wu et al. 2015), official split, from {source_path}"
    cache_file = None
    if path is None:  # the downloaded archive: keep its sampled clouds, sampling every mesh takes minutes
        stat = source_path.stat()
        cache_file = source_path.with_name(
            f"{variant}-{num_points}pts-seed{seed}-{stat.st_size}-{stat.st_mtime_ns}.npz"
        )
        cached = _read_cached(cache_file, variant, source, seed, num_points)
        if cached is not None:
            return cached
    members, read = _archive_members(source_path)
    class_names = tuple(sorted({c for c, _, _ in members}))
    splits: dict[str, tuple[list[np.ndarray], list[int]]] = {"train": ([], []), "test": ([], [])}
    for i, (cls, split, member) in enumerate(members):
        vertices, faces = parse_off(read(member), member)  # type: ignore[operator]
        rng = np.random.default_rng([seed, i])
        splits[split][0].append(sample_mesh_surface(vertices, faces, num_points, rng, member))
        splits[split][1].append(class_names.index(cls))
    built = {}
    for split, (clouds, labels) in splits.items():
        if not clouds:
            raise DataError(f"{str(source_path)!r} has no {split} meshes (CLASS/{split}/*.off)")
        points, mask = pad_clouds(clouds, num_points)
        built[split] = PointCloudSplit(points, mask, np.asarray(labels, dtype=np.int64))
    data = PointCloudDataset(
        variant if path is None else source_path.stem,  # a local copy is named by its file or folder
        built["train"],
        built["test"],
        class_names,
        source=source,
        settings={"seed": seed, "num_points": num_points},
    )
    if cache_file is not None:
        _write_cached(cache_file, data)
    return data


def _write_cached(path: Path, data: PointCloudDataset) -> None:
    from attnlab.utils import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                train_points=data.train.points,
                train_labels=data.train.labels,
                test_points=data.test.points,
                test_labels=data.test.labels,
                class_names=np.asarray(data.class_names),
            )


def _read_cached(path: Path, variant: str, source: str, seed: int, num_points: int) -> PointCloudDataset | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            splits = [
                PointCloudSplit(z[f"{s}_points"], np.ones(z[f"{s}_points"].shape[:2], dtype=bool), z[f"{s}_labels"])
                for s in ("train", "test")
            ]
            names = tuple(str(c) for c in z["class_names"])
    except (OSError, ValueError, KeyError):
        logger.warning("ignoring the unreadable cache file %s", path)
        return None
    return PointCloudDataset(variant, *splits, names, source=source, settings={"seed": seed, "num_points": num_points})


def load_point_clouds(
    name: str = "shapes",
    *,
    num_train_per_class: int = 250,
    num_test_per_class: int = 50,
    num_points: int | None = None,
    seed: int = DEFAULT_SEED,
    settings: ShapeSettings | None = None,
) -> PointCloudDataset:
    """A point-cloud data set by name: "shapes" (procedural, offline), "modelnet10", "modelnet40",
    or a path to a ModelNet zip / folder (read as ModelNet10-style: classes from its folders).

    Args:
        num_train_per_class, num_test_per_class, settings: the procedural set's sizes and augmentation.
        num_points: ModelNet points per mesh (default 1024); for "shapes", the max_points of `settings`.
        seed: the data seed.
    """
    if name == "shapes":
        settings = settings or ShapeSettings()
        if num_points is not None:
            settings = ShapeSettings(
                **{**settings.__dict__, "max_points": num_points, "min_points": min(settings.min_points, num_points)}
            )
        return make_shapes(num_train_per_class, num_test_per_class, seed=seed, settings=settings)
    if name in MODELNET:
        return load_modelnet(name, num_points=num_points or 1024, seed=seed)
    if Path(name).exists():
        return load_modelnet("modelnet10", path=name, num_points=num_points or 1024, seed=seed)
    raise ConfigError(
        f"unknown point-cloud data set {name!r}; choose shapes, {', '.join(MODELNET)}, or a ModelNet zip / folder"
    )
