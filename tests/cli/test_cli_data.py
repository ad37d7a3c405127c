"""`attnlab data`: the catalog, fetching into the cache (via file:// mirrors) and importing files."""

import dataclasses
import shutil

import pytest

from attnlab.cli import main
from attnlab.data import catalog


def test_list_shows_every_named_set(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("pydoc", "mnist5k", "digits", "amp", "minilm", "shakespeare", "mnist", "fashion"):
        assert f"\n{name} " in "\n" + out
    assert "pydoc        embedded      ready (offline)" in out
    assert "cache folder:" in out


def test_fetch_shakespeare_into_the_cache(monkeypatch, capsys, shared_data):
    from attnlab.data import text

    local = shared_data / "tinyshakespeare.txt"
    monkeypatch.setitem(
        text.CORPORA, "shakespeare", dataclasses.replace(text.CORPORA["shakespeare"], url=local.as_uri())
    )
    assert catalog.status(catalog.get("shakespeare")).startswith("not downloaded")
    assert main(["data", "fetch", "shakespeare"]) == 0
    assert "shakespeare: ready (cached)" in capsys.readouterr().out


def test_import_checks_digests(tmp_path, capsys, shared_data):
    src = shared_data / "mnist"
    assert (
        main(
            ["data", "import", "mnist", str(src / "t10k-images-idx3-ubyte.gz"), str(src / "t10k-labels-idx1-ubyte.gz")]
        )
        == 0
    )
    assert "2 of 4 files missing" in capsys.readouterr().out
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    shutil.copy(src / "t10k-images-idx3-ubyte.gz", bad)  # right name, wrong content
    assert main(["data", "import", "mnist", str(bad)]) == 2
    assert "not the right one" in capsys.readouterr().err
    assert main(["data", "import", "mnist", str(tmp_path / "nothing.gz")]) == 2
    assert "is not a file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["data", "fetch", "imagenet"], "unknown data set"),
        (["data", "import", "pydoc", __file__], "nothing to import"),
    ],
)
def test_bad_names(capsys, args, message):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_embedded_models_have_a_short_name(capsys):
    assert main(["embed", "--checkpoint", "minilm", "--text", "hello", "--normalize"]) == 0
    assert '"dim": 384' in capsys.readouterr().out
