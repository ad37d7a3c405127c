"""`attnlab.models.base.CheckpointMixin`: every model class saves and loads the same way."""

from __future__ import annotations

import pytest
import torch

from attnlab.errors import CheckpointError
from attnlab.models import baselines
from attnlab.models.base import CheckpointMixin
from attnlab.models.encoder import Encoder, EncoderConfig
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.models.registry import load_model
from attnlab.models.seq2seq import Seq2Seq, Seq2SeqConfig
from attnlab.models.sequence_transformer import SequenceTransformer, SequenceTransformerConfig
from attnlab.models.vit import ViT, ViTConfig

MODELS = [
    lambda: GPT(GPTConfig.from_name("nano", vocab_size=11)),
    lambda: Encoder(EncoderConfig.from_name("mini", vocab_size=11)),
    lambda: Seq2Seq(Seq2SeqConfig.from_name("tiny", vocab_size=11)),
    lambda: ViT(ViTConfig.from_name("tiny")),
    lambda: SequenceTransformer(SequenceTransformerConfig.from_name("tiny")),
    lambda: baselines.MLPClassifier(baselines.MLPConfig.from_name("tiny")),
    lambda: baselines.ConvNetClassifier(baselines.ConvNetConfig.from_name("tiny")),
    lambda: baselines.RecurrentModel(baselines.RecurrentConfig.from_name("tiny")),
]


@pytest.mark.parametrize("make", MODELS, ids=lambda m: type(m()).__name__)
def test_save_then_from_checkpoint_round_trips(make, tmp_path):
    torch.manual_seed(0)
    model = make()
    assert isinstance(model, CheckpointMixin)
    folder = model.save(tmp_path / "ckpt", metadata={"note": "round trip"})
    loaded = type(model).from_checkpoint(folder)
    assert type(loaded) is type(model) and loaded.config == model.config and not loaded.training
    own = model.state_dict()
    assert set(loaded.state_dict()) == set(own)
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, own[name]), name
    again, _ = load_model(folder)  # the registry reads what the mixin wrote
    assert type(again) is type(model)


def test_from_checkpoint_refuses_another_model_type(tmp_path):
    folder = ViT(ViTConfig.from_name("tiny")).save(tmp_path / "vit")
    with pytest.raises(CheckpointError, match="holds a 'vit' model, but this command needs gpt"):
        GPT.from_checkpoint(folder)


def test_save_keeps_its_keywords_and_tokenizer(tmp_path):
    from attnlab.tokenizers.char import CharTokenizer

    tokenizer = CharTokenizer.train("abcdefghij")
    model = GPT(GPTConfig.from_name("nano", vocab_size=tokenizer.vocab_size))
    folder = model.save(tmp_path / "gpt", tokenizer=tokenizer)
    _, restored = load_model(folder)
    assert restored is not None and restored.encode("abc") == tokenizer.encode("abc")
