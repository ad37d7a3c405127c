"""attnlab.models.memory: exact parameter counts without building, and the training-memory check."""

import tracemalloc

import pytest
import torch

from attnlab.errors import ConfigError
from attnlab.models import memory
from attnlab.models.encoder import Encoder, EncoderConfig
from attnlab.models.gpt import GPT
from attnlab.models.gpt_config import GPTConfig
from attnlab.models.llama import Llama, LlamaConfig
from attnlab.models.seq2seq import Seq2Seq, Seq2SeqConfig
from attnlab.models.vit import ViT, ViTConfig


def built(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # parameters() counts a tied matrix once


GPT_CONFIGS = [
    GPTConfig.from_name("nano"),
    GPTConfig.from_name("baby"),  # rotary: no position table
    GPTConfig.from_name("nano", bias=True, tie_weights=False),
    GPTConfig.from_name("nano", positional="sinusoidal", ff_dim=40, vocab_size=101),
    GPTConfig.from_name("nano", positional="none", norm_first=False, num_layers=3),
    GPTConfig.from_name("nano", positional="fourier", bias=True, max_seq_len=17),
]


@pytest.mark.parametrize("config", GPT_CONFIGS, ids=lambda c: f"{c.positional}-bias{c.bias}-tie{c.tie_weights}")
def test_gpt_parameter_count_is_exact(config):
    assert memory.count_parameters(config) == memory.gpt_parameters(config) == built(GPT(config))


LLAMA_CONFIGS = [
    LlamaConfig.from_name("nano"),  # 2 heads, 1 key/value head
    LlamaConfig.from_name("baby"),  # grouped-query attention, untied head
    LlamaConfig.from_name("nano", tie_weights=True, bias=True, num_kv_heads=2, ff_dim=40),
]


@pytest.mark.parametrize("config", LLAMA_CONFIGS, ids=lambda c: f"kv{c.num_kv_heads}-bias{c.bias}-tie{c.tie_weights}")
def test_llama_parameter_count_is_exact_with_no_code_for_it(config):
    """The decoder-only count reads the blocks' shape (RMSNorm, SwiGLU, grouped-query heads) from block_kwargs."""
    assert memory.count_parameters(config) == memory.decoder_lm_parameters(config) == built(Llama(config))


def test_a_huge_llama_is_refused_before_anything_is_allocated():
    huge = LlamaConfig.from_name("baby", embed_dim=400_000, num_heads=4, num_kv_heads=2)
    with pytest.raises(ConfigError, match="memory"):
        memory.check_training_memory(huge, 12, available=8 * 2**30)


ENCODER_CONFIGS = [
    EncoderConfig.from_name("mini"),  # mlm head, tied
    EncoderConfig.from_name("mini", tie_weights=False),
    EncoderConfig.from_name("mini", head="sequence", num_labels=3),
    EncoderConfig.from_name("mini", head="sequence", num_labels=1, pooling="mean"),  # regression
    EncoderConfig.from_name("mini", head="token", num_labels=5, bias=False),
    EncoderConfig.from_name("mini", head="none"),
    EncoderConfig.from_name(
        "mini", positional="rotary", norm_first=True, embed_norm=False, final_norm=True, type_vocab_size=2, ff_dim=48
    ),
    EncoderConfig.from_name("mini", positional="sinusoidal", type_vocab_size=3, tie_weights=False, bias=False),
]


@pytest.mark.parametrize("config", ENCODER_CONFIGS, ids=lambda c: f"{c.head}-tie{c.tie_weights}-{c.positional}")
def test_encoder_parameter_count_is_exact(config):
    assert memory.count_parameters(config) == memory.encoder_parameters(config) == built(Encoder(config))


SEQ2SEQ_CONFIGS = [
    Seq2SeqConfig(),
    Seq2SeqConfig(embed_dim=32, num_heads=2, tie_weights=False, bias=False),
    Seq2SeqConfig(embed_dim=32, num_heads=2, positional="rotary", num_encoder_layers=1, num_decoder_layers=3),
    Seq2SeqConfig(
        embed_dim=32,
        num_heads=4,
        positional="sinusoidal",
        norm_first=False,
        ff_dim=24,
        max_source_len=10,
        max_target_len=20,
    ),
]


@pytest.mark.parametrize(
    "config", SEQ2SEQ_CONFIGS, ids=lambda c: f"{c.positional}-tie{c.tie_weights}-norm{c.norm_first}"
)
def test_seq2seq_parameter_count_is_exact(config):
    assert memory.count_parameters(config) == memory.seq2seq_parameters(config) == built(Seq2Seq(config))


VIT_CONFIGS = [
    ViTConfig(),
    ViTConfig(image_size=8, patch_size=2, in_channels=3, num_classes=5, embed_dim=16, num_heads=2, ff_dim=None),
    ViTConfig(pool="mean", norm_first=False, num_layers=2),
]


@pytest.mark.parametrize("config", VIT_CONFIGS, ids=lambda c: f"{c.image_size}px-{c.pool}-norm{c.norm_first}")
def test_vit_parameter_count_is_exact(config):
    assert memory.count_parameters(config) == memory.vit_parameters(config) == built(ViT(config))


def test_other_configs_are_a_type_error():
    with pytest.raises(TypeError):
        memory.count_parameters(object())


# --- the training-memory check -----------------------------------------------------------------

HUGE = GPTConfig.from_name("baby", embed_dim=4_000_000)


def test_check_refuses_a_model_that_cannot_fit_naming_the_estimate():
    with pytest.raises(ConfigError) as e:
        memory.check_training_memory(HUGE, 12, available=16 * 2**30, what="the GPT")
    msg = str(e.value)
    params = memory.count_parameters(HUGE)
    assert params > 7 * 10**14  # 4 blocks of 12 C^2
    assert msg.startswith(f"the GPT has {params / 1e12:,.1f} trillion parameters and training it needs about ")
    assert "TiB" in msg and "16.0 GiB of available memory" in msg
    assert "--model.embed_dim" in msg  # weights dominate: the fix names the width
    assert "\n" not in msg


def test_check_passes_a_small_model_and_returns_the_estimate():
    est = memory.check_training_memory(GPTConfig.from_name("nano"), 8, available=1 * 2**30)
    assert est["parameters"] == built(GPT(GPTConfig.from_name("nano")))
    assert est["total"] == est["weights_and_optimizer"] + est["activations"] + est["eval_batches"]
    assert est["weights_and_optimizer"] == 16 * est["parameters"]  # float32 weights, grads, two Adam moments


def test_check_names_the_batch_when_activations_dominate():
    cfg = GPTConfig.from_name("nano", max_seq_len=4096)
    with pytest.raises(ConfigError, match=r"for activations at batch size 65,536\).*--train.batch_size"):
        memory.check_training_memory(cfg, 65_536, available=8 * 2**30)


def test_check_counts_the_stored_evaluation_batches():
    cfg = GPTConfig.from_name("nano")
    small = memory.training_bytes(cfg, 12)
    est = memory.training_bytes(cfg, 12, eval_batches=100_000)
    assert est["eval_batches"] == 100_000 * 12 * cfg.max_seq_len * 2 * 8
    with pytest.raises(ConfigError, match=r"for 100,000 evaluation batches.*--train.eval_iters"):
        memory.check_training_memory(
            cfg, 12, available=2 * small["total"] + est["eval_batches"] // 4, eval_batches=100_000
        )


def test_check_formats_absurd_sizes_without_overflowing():
    # 10**200 channels: the byte count does not fit a float; the message must still be one line.
    cfg = GPTConfig.from_name("nano", embed_dim=10**200, num_heads=1)
    with pytest.raises(ConfigError, match=r"has about 10\*\*401 parameters and training it needs about 2\*\*\d+ bytes"):
        memory.check_training_memory(cfg, 1, available=2**30)


def test_check_skips_when_the_machine_cannot_tell(monkeypatch):
    monkeypatch.setattr(memory, "device_memory", lambda device: (None, "available memory"))
    assert memory.check_training_memory(HUGE, 1)["parameters"] == memory.count_parameters(HUGE)


def test_the_host_reports_its_memory():
    avail = memory.available_memory()
    assert avail is None or avail > 2**20


# --- through the command line: refused before anything is allocated ---------------------------


def test_train_with_a_model_too_big_for_the_machine_exits_2_in_one_line(tmp_path, capsys):
    from attnlab.cli import main

    corpus = tmp_path / "c.txt"
    corpus.write_text("hello there, general kenobi.\n" * 40, encoding="utf-8")
    out = tmp_path / "run"
    tracemalloc.start()
    try:
        rc = main(
            [
                "train",
                "--data",
                str(corpus),
                "--out",
                str(out),
                "--preset",
                "nano",
                "--model.embed_dim=4000000",
                "--max-iters",
                "1",
                "--train.device=cpu",
            ]
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("attnlab: error: the GPT has ") and " parameters and training it needs about " in err[0]
    assert "of available memory" in err[0]
    assert peak < 200 * 2**20  # nothing close to the model's size was allocated (tracemalloc sees Python + NumPy)
    assert not out.exists() or not any(p.name.endswith(".safetensors") for p in out.iterdir())


def test_train_mlm_and_task_check_memory_too(tmp_path, capsys):
    from attnlab.cli import main

    corpus = tmp_path / "c.txt"
    corpus.write_text("hello there, general kenobi.\n" * 40, encoding="utf-8")
    assert (
        main(
            [
                "train",
                "--objective",
                "mlm",
                "--data",
                str(corpus),
                "--out",
                str(tmp_path / "m"),
                "--preset",
                "mini",
                "--model.embed_dim=4000000",
                "--model.num_heads=1",
                "--train.device=cpu",
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.startswith("attnlab: error: the encoder has ")
    assert (
        main(
            [
                "train",
                "--task",
                "reverse",
                "--out",
                str(tmp_path / "s"),
                "--model.embed_dim=4000000",
                "--train.device=cpu",
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.startswith("attnlab: error: the seq2seq model has ")
