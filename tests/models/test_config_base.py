"""The shared config scaffolding (`attnlab.configs.base`): checks, presets, block shape.

The checkpoint format is the configs' dict form, so `pinned_config_dicts.json` holds
`attnlab.config.to_dict` of every model config's defaults and presets as they were before
the configs moved onto the shared base; they must stay exactly the same.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import pytest

from attnlab.config import from_dict, to_dict
from attnlab.configs import base
from attnlab.configs.base import BlockShape, PresetsMixin, TransformerConfig
from attnlab.errors import ConfigError
from attnlab.models import baselines
from attnlab.models.encoder import EncoderConfig
from attnlab.models.gpt import GPTConfig
from attnlab.models.seq2seq import Seq2SeqConfig
from attnlab.models.sequence_transformer import SequenceTransformerConfig
from attnlab.models.vit import ViTConfig
from attnlab.nn.block import TransformerBlock

PINNED = json.loads((Path(__file__).with_name("pinned_config_dicts.json")).read_text(encoding="utf-8"))
CONFIGS = [
    GPTConfig,
    EncoderConfig,
    Seq2SeqConfig,
    ViTConfig,
    SequenceTransformerConfig,
    baselines.MLPConfig,
    baselines.ConvNetConfig,
    baselines.RecurrentConfig,
]


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_dict_form_of_defaults_and_presets_is_unchanged(cls):
    pinned = PINNED[cls.__name__]
    assert set(pinned) == {"<default>", *cls.presets}
    assert to_dict(cls()) == pinned["<default>"]
    for name in cls.presets:
        assert to_dict(cls.from_name(name)) == pinned[name], name
        # the dict form builds the same config back (what loading a checkpoint does)
        assert from_dict(cls, to_dict(cls.from_name(name))) == cls.from_name(name)


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_class_variables_are_not_fields(cls):
    names = {f.name for f in dataclasses.fields(cls)}
    assert not names & {"presets", "preset_kind"}
    assert names == set(PINNED[cls.__name__]["<default>"])


def test_ignore_index_is_defined_once_and_re_exported():
    from attnlab.models import encoder, gpt, seq2seq, sequence_transformer, vit

    assert base.IGNORE_INDEX == -100
    for module in (gpt, encoder, seq2seq, vit, sequence_transformer, baselines):
        assert module.IGNORE_INDEX == base.IGNORE_INDEX, module.__name__


@pytest.mark.parametrize(
    "cls, kind, preset",
    [
        (GPTConfig, "GPT", "nano"),
        (EncoderConfig, "encoder", "mini"),
        (Seq2SeqConfig, "seq2seq", "tiny"),
        (ViTConfig, "ViT", "tiny"),
        (SequenceTransformerConfig, "sequence-transformer", "tiny"),
        (baselines.MLPConfig, "MLP", "tiny"),
        (baselines.ConvNetConfig, "ConvNet", "tiny"),
        (baselines.RecurrentConfig, "recurrent", "tiny"),
    ],
)
def test_from_name_messages_and_overrides(cls, kind, preset):
    with pytest.raises(ConfigError, match=rf"unknown {kind} preset 'huge'; choose one of: {', '.join(cls.presets)}$"):
        cls.from_name("huge")
    with pytest.raises(ConfigError, match=rf"unknown {cls.__name__} field\(s\): bogus, nope"):
        cls.from_name(preset, nope=1, bogus=2)
    config = cls.from_name(preset, dropout=0.25)
    assert isinstance(config, cls) and config.dropout == 0.25
    preset_dropout = cls.presets[preset].get("dropout", cls().dropout)
    assert dataclasses.replace(config, dropout=preset_dropout) == cls.from_name(preset)


def test_from_name_checks_the_combined_fields():
    with pytest.raises(ConfigError, match="divisible"):
        GPTConfig.from_name("nano", num_heads=3)


def test_shared_checks_give_one_message_everywhere():
    for cls in (GPTConfig, EncoderConfig, Seq2SeqConfig, ViTConfig, SequenceTransformerConfig):
        with pytest.raises(ConfigError, match=r"^model\.dropout must be in \[0, 1\), got 1\.0$"):
            cls(dropout=1.0)
        with pytest.raises(ConfigError, match=r"^model\.embed_dim \(30\) must be divisible by model\.num_heads \(4\)$"):
            cls(embed_dim=30, num_heads=4)
        with pytest.raises(ConfigError, match=r"^model\.num_heads must be at least 1, got 0$"):
            cls(num_heads=0)
    for cls in (GPTConfig, EncoderConfig, Seq2SeqConfig):
        with pytest.raises(
            ConfigError, match=r"^rotary positions need an even head size \(embed_dim / num_heads\), got 5"
        ):
            cls(positional="rotary", embed_dim=20, num_heads=4)
        with pytest.raises(ConfigError, match=r"^sinusoidal positions need an even model\.embed_dim, got 9$"):
            cls(positional="sinusoidal", embed_dim=9, num_heads=1)
        with pytest.raises(ConfigError, match=r"^model\.rope_base must be a positive number"):
            cls(rope_base=float("nan"))
        with pytest.raises(ConfigError, match=r"^model\.ff_dim must be at least 1, got 0$"):
            cls(ff_dim=0)
    for cls in (GPTConfig, EncoderConfig, Seq2SeqConfig, ViTConfig):
        for bad in (0.0, -1.0, float("nan"), float("inf")):
            with pytest.raises(ConfigError, match=r"^model\.layer_norm_eps and model\.init_std must be positive$"):
                cls(layer_norm_eps=bad)
            with pytest.raises(ConfigError, match=r"^model\.layer_norm_eps and model\.init_std must be positive$"):
                cls(init_std=bad)
    for cls in (ViTConfig, SequenceTransformerConfig):  # these say what None means
        with pytest.raises(
            ConfigError, match=r"^model\.ff_dim must be at least 1 \(or None for 4 \* embed_dim\), got 0"
        ):
            cls(ff_dim=0)


def test_model_specific_checks_still_run_after_the_shared_ones():
    with pytest.raises(ConfigError, match="token_dropout needs model.mask_token_id"):
        EncoderConfig(token_dropout=True)
    with pytest.raises(ConfigError, match="three different tokens"):
        Seq2SeqConfig(bos_id=0)
    with pytest.raises(ConfigError, match="must divide model.image_size"):
        ViTConfig(patch_size=5)
    with pytest.raises(ConfigError, match="model.max_source_len must be at least 1"):
        Seq2SeqConfig(max_source_len=0)


def test_narrower_literals_are_validated_from_dicts():
    assert from_dict(GPTConfig, {"positional": "fourier"}).positional == "fourier"
    with pytest.raises(ConfigError, match="positional"):
        from_dict(EncoderConfig, {"positional": "fourier"})
    with pytest.raises(ConfigError, match="positional"):
        from_dict(SequenceTransformerConfig, {"positional": "rotary"})
    with pytest.raises(ConfigError, match="activation"):
        from_dict(baselines.MLPConfig, {"activation": "gelu_tanh"})


def test_subclass_redeclaring_a_field_changes_only_its_default():
    # GPT's defaults are the base's; GPT adds one field of its own (attention-only blocks)
    assert {**to_dict(TransformerConfig()), "attn_only": False} == to_dict(GPTConfig())
    encoder = EncoderConfig()
    assert (encoder.dropout, encoder.norm_first, encoder.layer_norm_eps, encoder.bias) == (0.1, False, 1e-12, True)
    assert (encoder.num_layers, encoder.rope_base, encoder.init_std) == (4, 10000.0, 0.02)  # inherited
    assert [f.name for f in dataclasses.fields(GPTConfig)] == [
        *[f.name for f in dataclasses.fields(TransformerConfig)],
        "attn_only",
    ]


def test_head_dim_hidden_dim_and_block_kwargs():
    config = GPTConfig(embed_dim=48, num_heads=3)
    assert (config.head_dim, config.hidden_dim) == (16, 192)
    assert GPTConfig(ff_dim=7).hidden_dim == 7
    seq2seq = Seq2SeqConfig.from_name("tiny")
    assert (seq2seq.head_dim, seq2seq.hidden_dim) == (16, 128)
    assert ViTConfig.from_name("tiny").hidden_dim == 32
    block_parameters = inspect.signature(TransformerBlock.__init__).parameters
    for config in (GPTConfig(), EncoderConfig(), seq2seq, ViTConfig()):
        kwargs = config.block_kwargs()
        assert set(kwargs) == {
            "embed_dim",
            "num_heads",
            "hidden_dim",
            "dropout",
            "activation",
            "norm_first",
            "bias",
            "layer_norm_eps",
        }
        assert set(kwargs) <= set(block_parameters)
        assert kwargs["hidden_dim"] == config.hidden_dim
    assert EncoderConfig().block_kwargs()["layer_norm_eps"] == 1e-12
    assert ViTConfig().block_kwargs()["bias"] is True  # a class constant, not a field


def test_mixins_are_torch_free_and_field_free():
    assert not dataclasses.is_dataclass(PresetsMixin) and not dataclasses.is_dataclass(BlockShape)
    source = Path(base.__file__).read_text(encoding="utf-8")
    assert "import torch" not in source
