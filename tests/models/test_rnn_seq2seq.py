"""RNNSeq2Seq: attention weights and padding, the bottleneck, the decoder-state cache, greedy and
beam decoding through the shared decoders, save/load through the registry, config errors."""

import dataclasses

import pytest
import torch
from torch.testing import assert_close

from attnlab.configs.rnn_seq2seq import RNNSeq2SeqConfig
from attnlab.decoding.protocol import DecodingCache, Seq2SeqLM
from attnlab.decoding.seq2seq import beam_search, greedy_decode
from attnlab.errors import CheckpointError, ConfigError
from attnlab.models import registry
from attnlab.models.registry import load_model
from attnlab.models.rnn_seq2seq import RNNSeq2Seq
from attnlab.models.seq2seq import sequence_log_probs

V = 13  # vocabulary: 0 <pad>, 1 <bos>, 2 <eos>, 3..12 symbols
ATTENTIONS = ("none", "additive", "dot", "general")
VARIANTS = [
    dict(attention=a, cell=cell, **extra)
    for a in ATTENTIONS
    for cell, extra in (("gru", {}), ("lstm", dict(num_layers=2, bidirectional=False)))
]


def variant_id(kw: dict) -> str:
    return "-".join(str(v) for v in kw.values())


def model_of(seed: int = 0, **kw) -> RNNSeq2Seq:
    torch.manual_seed(seed)
    return RNNSeq2Seq(RNNSeq2SeqConfig.from_name("tiny", vocab_size=V, **kw)).eval()


def padded_sources(lengths=(6, 3, 1, 4), seed: int = 0) -> torch.Tensor:
    """Right-padded sources of the given lengths (<eos> included), padded with 0."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for i, n in enumerate(lengths):
        x[i, : n - 1] = torch.randint(3, V, (n - 1,), generator=g)
        x[i, n - 1] = 2
    return x


def targets(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, V, (batch, length), generator=g)


def test_meets_the_decoding_protocol():
    model = model_of()
    assert isinstance(model, Seq2SeqLM)
    assert isinstance(model.new_cache(), DecodingCache)
    assert model.config.positional == "none"
    assert "rnn_seq2seq" in registry.model_types("encoder_decoder")


@pytest.mark.parametrize("attention", ["additive", "dot", "general"])
def test_attention_weights_sum_to_one_over_real_positions_and_are_zero_on_padding(attention):
    model = model_of(attention=attention)
    x = padded_sources()
    out = model(x, labels=targets(4, 5), output_attentions=True)
    (alpha,) = out.cross_attentions
    assert alpha.shape == (4, 1, 5, x.size(1))  # (B, one head, T, S)
    mask = (x != 0)[:, None, None, :].expand_as(alpha)
    assert_close(alpha.sum(dim=-1), torch.ones(4, 1, 5))
    assert (alpha[~mask] == 0).all() and (alpha[mask] > 0).all()


def test_the_model_without_attention_returns_no_weights():
    out = model_of(attention="none")(padded_sources(), labels=targets(4, 5), output_attentions=True)
    assert out.cross_attentions is None


@pytest.mark.parametrize("kw", VARIANTS, ids=variant_id)
def test_padding_never_changes_the_outputs_of_the_unpadded_rows(kw):
    model = model_of(**kw)
    x, y = padded_sources(), targets(4, 5)
    batched = model(x, labels=y).logits
    for i in range(4):
        n = int((x[i] != 0).sum())
        alone = model(x[i : i + 1, :n], labels=y[i : i + 1]).logits
        assert_close(batched[i : i + 1], alone, rtol=1e-5, atol=1e-5)
    enc = model.encode(x)
    assert (enc.last_hidden_state[x == 0] == 0).all()  # padded positions hold no annotation


def test_without_attention_the_decoder_sees_the_source_only_through_its_first_state():
    model = model_of(attention="none")
    x, y = padded_sources(), targets(4, 5)
    enc = model.encode(x)
    scrambled = dataclasses.replace(enc, last_hidden_state=torch.randn_like(enc.last_hidden_state))
    assert_close(model.decode(y, enc).logits, model.decode(y, scrambled).logits)
    other = dataclasses.replace(enc, initial_state=torch.randn_like(enc.initial_state))
    assert not torch.allclose(model.decode(y, enc).logits, model.decode(y, other).logits)


def test_attention_reads_the_annotations():
    model = model_of(attention="additive")
    x, y = padded_sources(), targets(4, 5)
    enc = model.encode(x)
    scrambled = dataclasses.replace(enc, last_hidden_state=torch.randn_like(enc.last_hidden_state))
    assert not torch.allclose(model.decode(y, enc).logits, model.decode(y, scrambled).logits)


@pytest.mark.parametrize("kw", VARIANTS, ids=variant_id)
def test_step_by_step_with_the_cache_equals_teacher_forcing(kw):
    model = model_of(**kw)
    x, y = padded_sources(), targets(4, 6)
    enc = model.encode(x)
    full = model.decode(y, enc).logits  # (B, T, V)
    cache = model.new_cache()
    steps = [model.decode(y[:, :2], enc, cache=cache).logits]
    for t in range(2, 6):
        steps.append(model.decode(y[:, t : t + 1], enc, cache=cache, last_only=True).logits)
    assert cache.length == 6
    assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)
    cache.crop(3)  # take tokens back, then feed them again
    again = model.decode(y[:, 3:], enc, cache=cache).logits
    assert_close(again, full[:, 3:], rtol=1e-5, atol=1e-5)
    cache.reorder(torch.tensor([3, 2, 1, 0]))
    assert cache.last[0].shape[0] == 4


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_greedy_and_beam_decoding_through_the_shared_decoders(attention):
    model = model_of(attention=attention, cell="lstm")
    x = padded_sources()
    greedy = greedy_decode(model, x, max_new_tokens=7)
    assert greedy.sequences.shape[0] == 4 and greedy.sequences.size(1) <= 7
    assert_close(greedy_decode(model, x, max_new_tokens=7, use_cache=False).sequences, greedy.sequences)
    one = beam_search(model, x, beam_width=1, max_new_tokens=7)
    assert torch.equal(one.sequences, greedy.sequences)
    assert_close(one.scores, greedy.scores)
    wide = beam_search(model, x, beam_width=3, max_new_tokens=7, length_penalty=0.0)
    assert wide.beams.shape[:2] == (4, 3)
    no_cache = beam_search(model, x, beam_width=3, max_new_tokens=7, length_penalty=0.0, use_cache=False)
    assert torch.equal(no_cache.sequences, wide.sequences)
    # the scores are the model's own log P(y | x) of the returned outputs, <eos> included
    assert_close(sequence_log_probs(model, x, wide.sequences), wide.scores, rtol=1e-4, atol=1e-4)
    gen = model.generate(x, beam_width=2, max_new_tokens=5)
    assert gen.beams.shape[:2] == (4, 2)


def test_generate_has_no_length_limit_of_its_own():
    model = model_of(max_target_len=4)
    out = greedy_decode(model, padded_sources(), max_new_tokens=40)  # no position table to outgrow
    assert out.sequences.size(1) <= 40


def test_save_and_load_through_the_registry(tmp_path):
    model = model_of(attention="general", cell="lstm", num_layers=2)
    x, y = padded_sources(), targets(4, 5)
    model.save(tmp_path / "ckpt")
    loaded, tokenizer = load_model(tmp_path / "ckpt")
    assert type(loaded) is RNNSeq2Seq and tokenizer is None
    assert loaded.config == model.config
    assert_close(loaded(x, labels=y).logits, model(x, labels=y).logits)
    assert type(RNNSeq2Seq.from_checkpoint(tmp_path / "ckpt")) is RNNSeq2Seq
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "ckpt", expect="seq2seq")


def test_a_few_optimizer_steps_lower_the_loss():
    model = model_of(attention="additive").train()
    x = padded_sources((6, 6, 5, 4))
    y = torch.flip(x, dims=[1])  # any fixed mapping will do
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss = model(x, labels=y).loss
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model(x, labels=y).loss.item() < 0.5 * first


def test_left_padding_and_empty_sources_are_refused():
    model = model_of()
    x = padded_sources()
    with pytest.raises(ValueError, match="right-padded"):
        model.encode(torch.flip(x, dims=[1]))
    with pytest.raises(ValueError, match="at least one real token"):
        model.encode(torch.zeros(2, 3, dtype=torch.long))


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(cell="rnn"), "model.cell"),
        (dict(attention="luong"), "model.attention"),
        (dict(hidden_dim=31), "model.hidden_dim must be even"),
        (dict(dropout=1.5), "dropout"),
        (dict(num_layers=0), "num_layers"),
        (dict(attention_dim=0), "model.attention_dim"),
        (dict(bos_id=0), "three different tokens"),
    ],
)
def test_config_errors(kw, message):
    with pytest.raises(ConfigError, match=message):
        RNNSeq2SeqConfig.from_name("tiny", vocab_size=V, **kw)
    with pytest.raises(ConfigError, match="unknown rnn_seq2seq preset"):
        RNNSeq2SeqConfig.from_name("huge")


def test_the_config_dict_is_the_checkpoint_format():
    from attnlab.config import to_dict

    assert to_dict(RNNSeq2SeqConfig()) == {
        "vocab_size": 32,
        "max_target_len": 128,
        "cell": "gru",
        "attention": "additive",
        "embed_dim": 64,
        "hidden_dim": 128,
        "attention_dim": None,
        "num_layers": 1,
        "bidirectional": True,
        "dropout": 0.0,
        "init_std": 0.1,
        "pad_id": 0,
        "bos_id": 1,
        "eos_id": 2,
    }
    assert set(RNNSeq2SeqConfig.presets) == {"tiny", "small"}
    names = [name for name, _ in model_of(attention="general", cell="lstm").named_parameters()]
    assert names == [
        "tok_emb.weight",
        *[f"encoder.{k}_l0{r}" for r in ("", "_reverse") for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")],
        "bridge.weight",
        "bridge.bias",
        "bridge_cell.weight",
        "bridge_cell.bias",
        "decoder.weight_ih_l0",
        "decoder.weight_hh_l0",
        "decoder.bias_ih_l0",
        "decoder.bias_hh_l0",
        "attention.W_a.weight",
        "combine.weight",
        "lm_head.weight",
        "lm_head.bias",
    ]
