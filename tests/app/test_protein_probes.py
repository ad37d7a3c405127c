"""A protein through a probe (`attnlab.app.protein_probes`)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from attnlab.app import protein_probes
from attnlab.errors import DataError, UnknownCharactersError

# --- proteins ---------------------------------------------------------------------------------------------------


def test_clean_protein():
    assert protein_probes.clean_protein(" gigk\nflhs ") == "GIGKFLHS"
    with pytest.raises(DataError, match="empty"):
        protein_probes.clean_protein(" \n")
    with pytest.raises(DataError, match="FASTA header"):
        protein_probes.clean_protein(">sp|P1\nMKT")
    with pytest.raises(UnknownCharactersError, match="'J'"):
        protein_probes.clean_protein("MKTJ")


def test_find_probes_and_predict(full_runs, tiny_probe):
    from attnlab.bio.controls import composition
    from attnlab.bio.probes import Probe

    (entry,) = protein_probes.find_probes(full_runs)
    assert (entry.relative, entry.kind, entry.task, entry.features) == ("amp-probe", "linear", "binary", "composition")
    assert entry.classes == ["not AMP", "AMP"] and "guessed" in entry.features_note
    result = protein_probes.probe_predict(full_runs, entry, "gigkflhsakkfgkafvgeimns")
    expected = Probe.load(tiny_probe).predict_proba(composition(["GIGKFLHSAKKFGKAFVGEIMNS"]))[0]
    np.testing.assert_allclose(result.probs, expected, rtol=1e-6)
    assert result.class_names == ["not AMP", "AMP"] and result.residues == "GIGKFLHSAKKFGKAFVGEIMNS"


def test_probe_features_recorded_unknown_or_missing(tmp_path, tiny_probe):
    root = tmp_path / "runs"
    shutil.copytree(tiny_probe, root / "recorded")
    (root / "recorded" / "embedder.json").write_text(
        json.dumps({"identity": "control:composition:protein:length=1:v1"})
    )
    shutil.copytree(tiny_probe, root / "plm")
    (root / "plm" / "embedder.json").write_text(json.dumps({"identity": "esm2:t6:mean"}))
    entries = {e.relative: e for e in protein_probes.find_probes(root)}
    assert entries["recorded"].features == "composition" and "recorded" in entries["recorded"].features_note
    assert entries["plm"].features is None and "esm2" in entries["plm"].features_note
    with pytest.raises(DataError, match="cannot use this probe"):
        protein_probes.probe_predict(root, entries["plm"], "MKT")
