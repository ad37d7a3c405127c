"""A digit through a ViT (`attnlab.app.vit_digits`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from attnlab.app import vit_digits
from attnlab.errors import DataError

# --- vision ---------------------------------------------------------------------------------------------------


def test_digit_source():
    assert vit_digits.digit_source({"data": "mnist5k"}, {})[0] == "mnist5k"
    name, note = vit_digits.digit_source({"data": "mnist"}, {"image_size": 28})
    assert name == "mnist5k" and "offline sample" in note
    assert vit_digits.digit_source({"data": "digits"}, {"image_size": 8})[0] == "digits"
    with pytest.raises(DataError, match="attnlab compare mnist"):
        vit_digits.digit_source({"data": "fashion"}, {"image_size": 28})
    with pytest.raises(DataError):
        vit_digits.digit_source({"data": "/some/folder"}, {"image_size": 32})


def test_vit_predict_matches_the_model(tiny_vit):
    from attnlab.models.registry import load_model
    from attnlab.models.vit import patch_attention_map

    model, _ = load_model(tiny_vit, expect="vit")
    meta = json.loads((tiny_vit / "config.json").read_text())
    image = np.random.default_rng(0).random((28, 28), dtype=np.float32)
    pred = vit_digits.vit_predict(model, meta, image, 0.0, 1.0)
    x = torch.from_numpy((image - 0.1312) / 0.3085)[None, None]
    with torch.no_grad():
        out = model(x, output_attentions=True)
    np.testing.assert_allclose(pred.probs, torch.softmax(out.logits[0], -1).numpy(), rtol=1e-5)
    np.testing.assert_allclose(pred.rollout, patch_attention_map(out.attentions, 4)[0].numpy(), rtol=1e-5)
    assert pred.last_layer.shape == (4, 4) and pred.last_layer.sum() == pytest.approx(1.0, abs=1e-5)
    assert pred.predicted == int(pred.probs.argmax())
    with pytest.raises(DataError, match="1x28x28"):
        vit_digits.vit_predict(model, meta, np.zeros((8, 8), np.float32), 0.0, 1.0)
