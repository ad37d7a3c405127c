"""Tests for attnlab.data.points: the procedural shapes, padding, OFF parsing and the ModelNet loader."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from attnlab.data import points as P
from attnlab.errors import ConfigError, DataError, DownloadError


def test_eight_classes_each_on_its_surface():
    assert len(P.SHAPE_CLASSES) >= 8 and len(set(P.SHAPE_CLASSES)) == len(P.SHAPE_CLASSES)
    rng = np.random.default_rng(0)
    clouds = {name: P.sample_shape(name, 500, rng) for name in P.SHAPE_CLASSES}
    for name, c in clouds.items():
        assert c.shape == (500, 3) and np.isfinite(c).all(), name
        assert np.abs(c).max() <= 1.3, name  # about unit size
    np.testing.assert_allclose(np.linalg.norm(clouds["sphere"], axis=1), 1.0)
    np.testing.assert_allclose(np.abs(clouds["cube"]).max(axis=1), 0.75)  # every point on a face
    ring = np.hypot(clouds["torus"][:, 0], clouds["torus"][:, 1]) - 0.7
    np.testing.assert_allclose(np.hypot(ring, clouds["torus"][:, 2]), 0.25)  # on the tube of radius 0.25
    cyl = clouds["cylinder"]
    on_side = np.isclose(np.hypot(cyl[:, 0], cyl[:, 1]), 0.6)
    on_cap = np.isclose(np.abs(cyl[:, 2]), 0.8)
    assert (on_side | on_cap).all() and on_side.any() and on_cap.any()
    with pytest.raises(ConfigError, match="unknown shape 'blob'; choose one of: sphere"):
        P.sample_shape("blob", 3, rng)


def test_the_set_is_deterministic_per_seed_and_its_test_split_fixed():
    a = P.make_shapes(3, 2, seed=7)
    b = P.make_shapes(3, 2, seed=7)
    for split in ("train", "test"):
        for field in ("points", "mask", "labels"):
            assert np.array_equal(getattr(getattr(a, split), field), getattr(getattr(b, split), field))
    other = P.make_shapes(3, 2, seed=8)
    assert not np.array_equal(a.train.points, other.train.points)
    bigger = P.make_shapes(5, 2, seed=7)  # more training clouds: the held-out split does not move
    assert np.array_equal(bigger.test.points, a.test.points) and np.array_equal(bigger.test.labels, a.test.labels)
    assert np.array_equal(bigger.train.points[: len(a.train)], a.train.points)  # and the first ones stay
    assert not np.array_equal(a.train.points[:16], a.test.points[:16])  # train and test are different draws


def test_counts_padding_labels_and_centring():
    settings = P.ShapeSettings(min_points=40, max_points=60)
    data = P.make_shapes(4, 2, seed=1, settings=settings)
    K = len(P.SHAPE_CLASSES)
    assert data.train.points.shape == (4 * K, 60, 3) and data.train.points.dtype == np.float32
    assert data.train.mask.dtype == bool and data.train.labels.dtype == np.int64
    assert np.bincount(data.train.labels).tolist() == [4] * K and np.bincount(data.test.labels).tolist() == [2] * K
    counts = data.train.counts
    assert counts.min() >= 40 and counts.max() <= 60 and len(set(counts.tolist())) > 1  # variable sizes
    for i in range(len(data.train)):
        n = counts[i]
        assert data.train.mask[i, :n].all() and not data.train.mask[i, n:].any()  # real points first
        assert not data.train.points[i, n:].any()  # padding is zeros
        np.testing.assert_allclose(data.train.points[i, :n].mean(0), 0.0, atol=1e-5)  # centred
    assert data.min_points >= 40 and data.max_points == 60 and data.num_classes == K
    assert "8 classes" in data.summary() and data.settings["seed"] == 1


def test_occlusion_removes_one_side_and_rotation_is_a_rotation():
    rng = np.random.default_rng(3)
    for kind in ("z", "so3"):
        R = P.random_rotation(kind, rng)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.isclose(np.linalg.det(R), 1.0)
    assert np.array_equal(P.random_rotation("none", rng), np.eye(3))
    Rz = P.random_rotation("z", rng)
    assert np.allclose(Rz[2], [0, 0, 1])  # the vertical axis stays put
    # a sphere cut by a plane: its points no longer surround the centre evenly
    plain = P.ShapeSettings(rotation="none", scale_range=0.0, jitter=0.0, occlusion_prob=0.0)
    cut = P.ShapeSettings(rotation="none", scale_range=0.0, jitter=0.0, occlusion_prob=1.0, max_occlusion=0.5)
    whole = P.make_shapes(6, 1, seed=2, settings=plain)
    part = P.make_shapes(6, 1, seed=2, settings=cut)
    sphere = np.flatnonzero(whole.train.labels == 0)

    def spread(d, i):
        pts = d.train.points[i][d.train.mask[i]]
        return np.linalg.norm(pts, axis=1).std()  # a whole, centred unit sphere: every point at ~ the same radius

    assert max(spread(whole, i) for i in sphere) < 0.12
    assert max(spread(part, i) for i in sphere) > 0.15


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(min_points=10, max_points=5), "min_points"),
        (dict(rotation="x"), "rotation must be"),
        (dict(scale_range=1.5), "scale_range"),
        (dict(max_occlusion=1.0), "max_occlusion"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        P.ShapeSettings(**kwargs)


def test_pad_clouds():
    pts, mask = P.pad_clouds([np.ones((2, 3)), np.full((4, 3), 2.0)])
    assert pts.shape == (2, 4, 3) and mask.tolist() == [[True, True, False, False], [True] * 4]
    assert not pts[0, 2:].any()
    with pytest.raises(DataError, match="cloud 0 has shape"):
        P.pad_clouds([np.ones((2, 2))])
    with pytest.raises(DataError, match="more than the padded length 3"):
        P.pad_clouds([np.ones((4, 3))], 3)


# -- OFF meshes and ModelNet --------------------------------------------------

CUBE_OFF = """OFF
8 6 0
-1 -1 -1
1 -1 -1
1 1 -1
-1 1 -1
-1 -1 1
1 -1 1
1 1 1
-1 1 1
4 0 1 2 3
4 4 5 6 7
4 0 1 5 4
4 2 3 7 6
4 1 2 6 5
4 0 3 7 4
"""
TETRA_OFF = "OFF4 4 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n"  # ModelNet's fused header


def test_parse_off_with_polygons_and_a_fused_header():
    v, f = P.parse_off(CUBE_OFF, "cube.off")
    assert v.shape == (8, 3) and f.shape == (12, 3)  # six quads -> twelve triangles
    v, f = P.parse_off(TETRA_OFF)
    assert v.shape == (4, 3) and f.shape == (4, 3)
    pts = P.sample_mesh_surface(*P.parse_off(CUBE_OFF), 300, np.random.default_rng(0))
    assert pts.shape == (300, 3) and np.isclose(np.linalg.norm(pts, axis=1).max(), 1.0)  # in the unit ball


@pytest.mark.parametrize(
    "text, message",
    [
        ("PLY\n", "bad.off is not an OFF mesh"),
        ("OFF\n", "no vertex and face counts"),
        ("OFF\nthree 1 0\n", "counts line"),
        ("OFF\n4 4 0\n0 0 0\n", "promises 4 vertices and 4 faces"),
        ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 x 0\n3 0 1 2\n", "not numbers"),
        ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", "outside 0 .. 2"),
    ],
)
def test_malformed_off_is_one_clear_error(text, message):
    with pytest.raises(DataError, match=message):
        P.parse_off(text, "bad.off")


def _write_modelnet_zip(path: Path, *, broken: bool = False) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for cls, off in (("box", CUBE_OFF), ("tetra", TETRA_OFF)):
            for split, count in (("train", 3), ("test", 2)):
                for i in range(count):
                    z.writestr(f"ModelNet10/{cls}/{split}/{cls}_{i:04d}.off", off)
        z.writestr("__MACOSX/ModelNet10/box/train/._box_0000.off", "junk")
        if broken:
            z.writestr("ModelNet10/tetra/test/tetra_0009.off", "OFF\n4 4 0\n1 2\n")
    return path


def test_modelnet_loader_on_a_small_zip(tmp_path):
    archive = _write_modelnet_zip(tmp_path / "ModelNet10.zip")
    data = P.load_modelnet("modelnet10", path=archive, num_points=64, seed=0)
    assert data.class_names == ("box", "tetra") and data.name == "ModelNet10"
    assert data.train.points.shape == (6, 64, 3) and data.test.points.shape == (4, 64, 3)
    assert np.bincount(data.train.labels).tolist() == [3, 3] and np.bincount(data.test.labels).tolist() == [2, 2]
    assert data.train.mask.all() and np.allclose(np.linalg.norm(data.train.points, axis=2).max(1), 1.0, atol=1e-6)
    again = P.load_modelnet("modelnet10", path=archive, num_points=64, seed=0)
    assert np.array_equal(again.train.points, data.train.points)  # seeded sampling
    # an extracted folder reads the same
    folder = tmp_path / "extracted"
    zipfile.ZipFile(archive).extractall(folder)
    from_folder = P.load_point_clouds(str(folder), num_points=64)
    assert np.array_equal(from_folder.train.points, data.train.points)


def test_modelnet_problems_are_one_clear_error(tmp_path):
    broken = _write_modelnet_zip(tmp_path / "broken.zip", broken=True)
    with pytest.raises(DataError, match="tetra_0009.off: the header promises 4 vertices"):
        P.load_modelnet(path=broken, num_points=8)
    (tmp_path / "notzip.zip").write_text("hello")
    with pytest.raises(DataError, match="neither a zip archive nor a folder"):
        P.load_modelnet(path=tmp_path / "notzip.zip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no CLASS/train"):
        P.load_modelnet(path=tmp_path / "empty")
    with pytest.raises(DataError, match="does not exist"):
        P.load_modelnet(path=tmp_path / "missing.zip")
    with pytest.raises(ConfigError, match="unknown ModelNet variant"):
        P.load_modelnet("modelnet11")
    with pytest.raises(ConfigError, match="unknown point-cloud data set 'clouds'"):
        P.load_point_clouds("clouds")


def test_modelnet_download_goes_through_the_cache_with_sha256(tmp_path, monkeypatch):
    archive = _write_modelnet_zip(tmp_path / "ModelNet10.zip")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    monkeypatch.setenv("ATTNLAB_CACHE", str(tmp_path / "cache"))
    remote = P._RemoteArchive(archive.as_uri(), "ModelNet10.zip", digest, 6, 4)
    monkeypatch.setitem(P.MODELNET, "modelnet10", remote)
    data = P.load_modelnet("modelnet10", num_points=16)
    assert (tmp_path / "cache" / "modelnet" / "ModelNet10.zip").is_file() and len(data.train) == 6
    sampled = list((tmp_path / "cache" / "modelnet").glob("modelnet10-16pts-seed0-*.npz"))
    assert len(sampled) == 1  # the sampled clouds are cached beside the archive
    archive.unlink()  # now only the cached copy is there
    again = P.load_modelnet("modelnet10", num_points=16)
    assert np.array_equal(again.train.points, data.train.points) and again.class_names == data.class_names
    assert again.test.mask.all() and len(again.test) == 4
    sampled[0].write_bytes(b"not an npz")  # a broken cache file is ignored and rewritten
    assert np.array_equal(P.load_modelnet("modelnet10", num_points=16).train.points, data.train.points)
    (tmp_path / "cache" / "modelnet" / "ModelNet10.zip").unlink()
    bad = P._RemoteArchive(_write_modelnet_zip(tmp_path / "other.zip").as_uri(), "ModelNet10.zip", "0" * 64, 6, 4)
    monkeypatch.setitem(P.MODELNET, "modelnet10", bad)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        P.load_modelnet("modelnet10")
    assert not (tmp_path / "cache" / "modelnet" / "ModelNet10.zip").exists()


def test_load_point_clouds_shapes_with_num_points():
    data = P.load_point_clouds("shapes", num_train_per_class=1, num_test_per_class=1, num_points=30)
    assert data.max_points == 30 and data.min_points <= 30


def test_the_data_and_config_modules_are_torch_free():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import attnlab.data.points, attnlab.configs.point\n"
        "attnlab.data.points.make_shapes(1, 1)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
