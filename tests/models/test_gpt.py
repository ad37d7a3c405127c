"""GPT: shapes, loss, presets, causality, padding, caching, checkpoints, overfitting."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from attnlab.errors import CheckpointError, ConfigError
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.models.registry import load_model


def nano(**kw) -> GPTConfig:
    return GPTConfig.from_name("nano", vocab_size=37, **kw)


def test_presets():
    baby = GPTConfig.from_name("baby")
    assert (baby.num_layers, baby.num_heads, baby.embed_dim, baby.max_seq_len) == (4, 4, 128, 64)
    assert baby.positional == "rotary" and GPTConfig.from_name("nano").positional == "learned"
    small = GPTConfig.from_name("small")
    assert (small.num_layers, small.num_heads, small.embed_dim, small.max_seq_len) == (6, 6, 384, 256)
    with pytest.raises(ConfigError, match="unknown GPT preset"):
        GPTConfig.from_name("huge")


def test_parameter_count_of_baby_matches_formula():
    c = GPTConfig.from_name("baby", vocab_size=65, positional="learned")
    model = GPT(c)
    C, L, V, T = 128, 4, 65, 64
    per_block = 3 * C * C + C * C + 2 * 4 * C * C + 2 * C  # qkv, out, ff, two norm gains (no biases)
    expected = V * C + T * C + L * per_block + C  # tied head, final norm gain
    assert model.num_parameters() == expected


def test_config_validation():
    with pytest.raises(ConfigError, match="divisible"):
        GPTConfig(embed_dim=30, num_heads=4)
    with pytest.raises(ConfigError, match="dropout"):
        GPTConfig(dropout=1.5)
    with pytest.raises(ConfigError):
        GPTConfig(num_layers=0)


def test_logits_and_loss():
    torch.manual_seed(0)
    model = GPT(nano()).eval()
    x = torch.randint(0, 37, (2, 10))
    y = torch.randint(0, 37, (2, 10))
    out = model(x, y)
    assert out.logits.shape == (2, 10, 37)
    assert_close(out.loss, F.cross_entropy(out.logits.reshape(-1, 37), y.reshape(-1)))
    assert model(x).loss is None
    # ignored targets are not scored
    y2 = y.clone()
    y2[:, 5:] = -100
    assert_close(model(x, y2).loss, F.cross_entropy(out.logits[:, :5].reshape(-1, 37), y[:, :5].reshape(-1)))


def test_weight_tying_optional():
    tied = GPT(nano())
    assert tied.lm_head.weight is tied.tok_emb.weight
    untied = GPT(nano(tie_weights=False))
    assert untied.lm_head.weight is not untied.tok_emb.weight
    assert untied.num_parameters() == tied.num_parameters() + 37 * 32


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "fourier", "rotary", "none"])
def test_future_tokens_never_change_past_logits(positional):
    torch.manual_seed(1)
    model = GPT(nano(positional=positional)).eval()
    x = torch.randint(0, 37, (1, 12))
    x2 = x.clone()
    x2[0, 7:] = torch.randint(0, 37, (5,))
    assert_close(model(x).logits[:, :7], model(x2).logits[:, :7])
    assert not torch.allclose(model(x).logits[:, 8:], model(x2).logits[:, 8:])


def test_padding_does_not_change_unpadded_outputs():
    torch.manual_seed(2)
    model = GPT(nano()).eval()
    x = torch.randint(0, 37, (1, 6))
    padded = torch.cat([x, torch.zeros(1, 4, dtype=torch.long)], 1)
    mask = torch.tensor([[1] * 6 + [0] * 4])
    assert_close(model(padded, attention_mask=mask).logits[:, :6], model(x).logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("positional", ["learned", "rotary"])
def test_kv_cache_forward_equals_full_forward(positional):
    torch.manual_seed(3)
    model = GPT(nano(positional=positional)).eval()
    x = torch.randint(0, 37, (2, 16))
    full = model(x).logits
    cache = model.new_cache()
    pieces = [model(x[:, :5], cache=cache).logits] + [model(x[:, t : t + 1], cache=cache).logits for t in range(5, 16)]
    assert_close(torch.cat(pieces, 1), full, atol=1e-5, rtol=1e-5)


def test_hidden_states_and_attentions_in_hugging_face_layout():
    model = GPT(nano()).eval()
    x = torch.randint(0, 37, (2, 9))
    out = model(x, output_hidden_states=True, output_attentions=True)
    assert len(out.hidden_states) == model.config.num_layers + 1
    assert all(h.shape == (2, 9, 32) for h in out.hidden_states)
    assert len(out.attentions) == model.config.num_layers
    assert out.attentions[0].shape == (2, 2, 9, 9)
    # last hidden state is after the final norm and produces the logits
    assert_close(model.lm_head(out.hidden_states[-1]), out.logits)
    assert_close(out.attentions[1].sum(-1), torch.ones(2, 2, 9))


def test_context_overflow_is_an_error():
    model = GPT(nano())
    with pytest.raises(ValueError, match="exceeds the context"):
        model(torch.zeros(1, 33, dtype=torch.long))


def test_checkpoint_round_trip(tmp_path):
    from attnlab.tokenizers import CharTokenizer

    torch.manual_seed(4)
    model = GPT(nano(bias=True)).eval()
    tok = CharTokenizer(list("abcdefghijklmnopqrstuvwxyz0123456789 "))
    model.save(tmp_path / "ck", tokenizer=tok)
    loaded, tok2 = load_model(tmp_path / "ck")
    x = torch.randint(0, 37, (1, 8))
    assert_close(loaded(x).logits, model(x).logits)
    assert tok2.encode("hello 42") == tok.encode("hello 42")
    assert loaded.lm_head.weight is loaded.tok_emb.weight  # tying survives the round trip
    files = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert "model.safetensors" in files and "config.json" in files
    assert not any(f.endswith((".pt", ".pkl", ".bin")) for f in files)


def test_corrupt_and_mismatched_checkpoints(tmp_path):
    model = GPT(nano())
    model.save(tmp_path / "ck")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not an attnlab checkpoint"):
        load_model(tmp_path / "empty")
    # truncated weights
    w = tmp_path / "ck" / "model.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(tmp_path / "ck")
    # weights that do not match the config
    GPT(nano()).save(tmp_path / "ck2")
    import json

    cfg = json.loads((tmp_path / "ck2" / "config.json").read_text())
    cfg["config"]["embed_dim"] = 64
    (tmp_path / "ck2" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="config.embed_dim is 64 there but the checkpoint was saved with 32"):
        load_model(tmp_path / "ck2")
    # a folder written before manifests and integrity records: the weights' shapes are checked
    (tmp_path / "ck2" / "checkpoint.json").unlink()
    del cfg["integrity"]
    (tmp_path / "ck2" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="shape"):
        load_model(tmp_path / "ck2")
    cfg["config"]["not_a_field"] = 1
    (tmp_path / "ck2" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="not_a_field"):
        load_model(tmp_path / "ck2")


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(5)
    model = GPT(nano())
    x = torch.randint(0, 37, (4, 16))
    y = torch.roll(x, -1, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = model(x, y).loss
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 3.0 and loss.item() < 0.1


def test_post_norm_gpt_has_no_final_norm():
    model = GPT(nano(norm_first=False))
    assert isinstance(model.norm, torch.nn.Identity)
    assert dataclasses.asdict(model.config)["norm_first"] is False
