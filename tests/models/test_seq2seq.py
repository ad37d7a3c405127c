"""Seq2Seq: parity with torch.nn.Transformer, loss, causality, padding, cross-attention,
KV cache, attention/hidden-state layouts, greedy vs beam search, checkpoints."""

import json

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from attnlab.decoding.seq2seq import beam_search, greedy_decode
from attnlab.errors import CheckpointError, ConfigError
from attnlab.models.registry import load_model
from attnlab.models.seq2seq import (
    IGNORE_INDEX,
    Seq2Seq,
    Seq2SeqConfig,
    sequence_log_probs,
    shift_right,
)

V = 13  # vocabulary: 0 <pad>, 1 <bos>, 2 <eos>, 3..12 symbols


def tiny(**kw) -> Seq2SeqConfig:
    return Seq2SeqConfig.from_name("tiny", vocab_size=V, **kw)


def model_of(seed: int = 0, **kw) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(tiny(**kw)).eval()


def sources(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(3, V, (batch, length), generator=g)
    x[:, -1] = 2  # sources end with <eos>, as in training
    return x


def peaked_model(seed: int = 0, eos_logit: float = 3.0) -> Seq2Seq:
    """A random model whose next-token distributions are far from uniform (large weights),
    so that greedy and beam search have real choices to make, and whose `<eos>` logit is
    about `eos_logit` * (1 + noise), so that outputs end at different lengths."""
    model = model_of(seed, init_std=0.5, num_heads=2, tie_weights=False)
    with torch.no_grad():
        model.decoder_norm.bias.zero_()
        model.decoder_norm.bias[0] = 1.0  # channel 0 of the final hidden state ~ 1 + N(0, 1)
        model.lm_head.weight[2].zero_()
        model.lm_head.weight[2, 0] = eos_logit
    return model


# -- config and basics ----------------------------------------------------------------


def test_presets_and_validation():
    small = Seq2SeqConfig.from_name("small")
    assert (small.num_encoder_layers, small.num_decoder_layers, small.embed_dim) == (2, 2, 64)
    with pytest.raises(ConfigError, match="unknown seq2seq preset.*tiny"):
        Seq2SeqConfig.from_name("huge")
    with pytest.raises(ConfigError, match="divisible"):
        Seq2SeqConfig(embed_dim=30, num_heads=4)
    with pytest.raises(ConfigError, match="different"):
        Seq2SeqConfig(bos_id=0)
    with pytest.raises(ConfigError, match="eos_id"):
        Seq2SeqConfig(vocab_size=8, eos_id=8)
    with pytest.raises(ConfigError, match="num_decoder_layers"):
        Seq2SeqConfig(num_decoder_layers=0)


def test_shift_right_by_hand():
    labels = torch.tensor([[5, 6, 2], [7, 2, IGNORE_INDEX]])
    assert shift_right(labels, bos_id=1, pad_id=0).tolist() == [[1, 5, 6], [1, 7, 2]]
    labels = torch.tensor([[5, 2, IGNORE_INDEX, IGNORE_INDEX]])
    assert shift_right(labels, bos_id=1, pad_id=0).tolist() == [[1, 5, 2, 0]]


def test_loss_is_cross_entropy_over_scored_positions():
    model = model_of(1)
    x = sources(3, 6)
    labels = torch.randint(3, V, (3, 5))
    labels[1, 3:] = IGNORE_INDEX
    out = model(x, labels=labels)
    assert out.logits.shape == (3, 5, V)
    keep = labels != IGNORE_INDEX
    assert_close(out.loss, F.cross_entropy(out.logits[keep], labels[keep]))
    # decoder input defaults to the labels shifted right
    explicit = model(x, shift_right(labels, 1, 0), labels)
    assert_close(explicit.logits, out.logits)
    assert model(x, shift_right(labels, 1, 0)).loss is None
    with pytest.raises(ValueError, match="decoder_input_ids or labels"):
        model(x)


def test_parameter_count_by_formula():
    c = tiny(ff_dim=48)
    C, F_, S, T = 32, 48, c.max_source_len, c.max_target_len
    attn = 4 * C * C + 4 * C  # q, k, v, out with biases
    ff = C * F_ + F_ + F_ * C + C
    norm = 2 * C
    encoder_block = attn + ff + 2 * norm
    decoder_block = 2 * attn + ff + 3 * norm
    expected = V * C + S * C + T * C + encoder_block + decoder_block + 2 * norm  # tied head, two final norms
    assert Seq2Seq(c).num_parameters() == expected


# -- parity with PyTorch's own encoder-decoder --------------------------------------------


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
@pytest.mark.parametrize("norm_first", [True, False])
def test_parity_with_torch_nn_transformer(norm_first):
    """Copy our weights into `torch.nn.Transformer` and compare the decoder outputs."""
    model = model_of(2, norm_first=norm_first, num_heads=4, dropout=0.0)
    c = model.config
    ref = torch.nn.Transformer(
        d_model=c.embed_dim,
        nhead=c.num_heads,
        num_encoder_layers=1,
        num_decoder_layers=1,
        dim_feedforward=c.hidden_dim,
        dropout=0.0,
        activation="gelu",
        batch_first=True,
        norm_first=norm_first,
    ).eval()
    enc, dec = model.encoder_blocks[0], model.decoder_blocks[0]
    r_enc, r_dec = ref.encoder.layers[0], ref.decoder.layers[0]
    with torch.no_grad():
        for ours, theirs in ((enc, r_enc), (dec, r_dec)):
            theirs.self_attn.in_proj_weight.copy_(ours.attn.qkv.weight)
            theirs.self_attn.in_proj_bias.copy_(ours.attn.qkv.bias)
            theirs.self_attn.out_proj.weight.copy_(ours.attn.out.weight)
            theirs.self_attn.out_proj.bias.copy_(ours.attn.out.bias)
            theirs.linear1.load_state_dict(ours.ff.fc1.state_dict())
            theirs.linear2.load_state_dict(ours.ff.fc2.state_dict())
            theirs.norm1.load_state_dict(ours.norm1.state_dict())
            theirs.norm2.load_state_dict(ours.norm2.state_dict() if theirs is r_enc else ours.norm_cross.state_dict())
        r_dec.norm3.load_state_dict(dec.norm2.state_dict())
        r_dec.multihead_attn.in_proj_weight.copy_(torch.cat([dec.cross_attn.q.weight, dec.cross_attn.kv.weight]))
        r_dec.multihead_attn.in_proj_bias.copy_(torch.cat([dec.cross_attn.q.bias, dec.cross_attn.kv.bias]))
        r_dec.multihead_attn.out_proj.weight.copy_(dec.cross_attn.out.weight)
        r_dec.multihead_attn.out_proj.bias.copy_(dec.cross_attn.out.bias)
        if norm_first:  # nn.Transformer ends both stacks with a norm, as pre-norm needs
            ref.encoder.norm.load_state_dict(model.encoder_norm.state_dict())
            ref.decoder.norm.load_state_dict(model.decoder_norm.state_dict())
        else:  # the post-norm original has none (its blocks end with one)
            ref.encoder.norm = torch.nn.Identity()
            ref.decoder.norm = torch.nn.Identity()
    x = sources(2, 7, seed=3)
    x[1, 4:] = 0  # padding in the second source
    x[1, 3] = 2
    y = torch.randint(3, V, (2, 5))
    ours = model(x, y, output_hidden_states=True)
    S, T = x.size(1), y.size(1)
    src = model.tok_emb(x) + model.encoder_pos_emb(torch.arange(S))
    tgt = model.tok_emb(y) + model.decoder_pos_emb(torch.arange(T))
    pad = x == 0  # PyTorch's key padding masks use True = blocked (ours: True = may attend)
    theirs = ref(
        src,
        tgt,
        tgt_mask=ref.generate_square_subsequent_mask(T, dtype=torch.bool),
        src_key_padding_mask=pad,
        memory_key_padding_mask=pad,
        tgt_is_causal=True,
    )
    assert_close(ours.hidden_states[-1], theirs, atol=1e-5, rtol=1e-5)
    enc_ref = ref.encoder(src, src_key_padding_mask=pad)
    real = ~pad
    assert_close(ours.extras["encoder_last_hidden_state"][real], enc_ref[real], atol=1e-5, rtol=1e-5)


# -- invariants ---------------------------------------------------------------------------


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "rotary", "none"])
def test_future_target_tokens_never_change_earlier_logits(positional):
    model = model_of(3, positional=positional)
    x = sources(1, 8)
    y = torch.randint(3, V, (1, 9))
    y2 = y.clone()
    y2[0, 5:] = torch.randint(3, V, (4,))
    y2[0, 5] = y[0, 5] % (V - 3) + 3  # make sure position 5 really changes
    a, b = model(x, y).logits, model(x, y2).logits
    assert_close(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_source_padding_changes_nothing():
    model = model_of(4)
    x = sources(1, 6)
    y = torch.randint(3, V, (1, 4))
    padded = torch.cat([x, torch.zeros(1, 5, dtype=torch.long)], 1)
    plain, pad = model(x, y), model(padded, y)  # default mask: input_ids != pad_id
    assert_close(pad.logits, plain.logits, atol=1e-5, rtol=1e-5)
    assert_close(
        pad.extras["encoder_last_hidden_state"][:, :6], plain.extras["encoder_last_hidden_state"], atol=1e-5, rtol=1e-5
    )
    # an explicit mask does the same, whatever the padded positions hold
    junk = padded.clone()
    junk[0, 6:] = 7
    mask = torch.tensor([[1] * 6 + [0] * 5])
    assert_close(model(junk, y, attention_mask=mask).logits, plain.logits, atol=1e-5, rtol=1e-5)


def test_target_padding_changes_nothing_and_batches_match_single_rows():
    model = model_of(5)
    xs = [sources(1, 4, seed=1), sources(1, 7, seed=2)]
    ys = [torch.randint(3, V, (1, 6)), torch.randint(3, V, (1, 3))]
    x = torch.zeros(2, 7, dtype=torch.long)
    y = torch.zeros(2, 6, dtype=torch.long)
    y_mask = torch.zeros(2, 6, dtype=torch.long)
    for i in range(2):
        x[i, : xs[i].size(1)] = xs[i][0]
        y[i, : ys[i].size(1)] = ys[i][0]
        y_mask[i, : ys[i].size(1)] = 1
    batch = model(x, y, decoder_attention_mask=y_mask).logits
    for i in range(2):
        single = model(xs[i], ys[i]).logits[0]
        assert_close(batch[i, : ys[i].size(1)], single, atol=1e-5, rtol=1e-5)
    # right padding of the target needs no mask at all (causality hides it)
    assert_close(model(x, y).logits[1, :3], batch[1, :3], atol=1e-5, rtol=1e-5)


def test_cross_attention_is_used():
    model = model_of(6)
    x = sources(2, 6)
    y = torch.randint(3, V, (2, 4))
    x2 = x.clone()
    x2[:, 0] = x[:, 0] % (V - 3) + 3  # change one source token
    assert not torch.allclose(model(x, y).logits, model(x2, y).logits, atol=1e-4)
    # and cross-attention puts no weight on padded source positions
    xp = torch.cat([x, torch.zeros(2, 3, dtype=torch.long)], 1)
    out = model(xp, y, output_attentions=True)
    for w in out.cross_attentions:
        assert torch.all(w[..., 6:] == 0)
        assert_close(w.sum(-1), torch.ones_like(w.sum(-1)))


def test_attentions_and_hidden_states_in_hugging_face_layout():
    model = model_of(7, num_heads=2)
    c = model.config
    x = sources(2, 6)
    y = torch.randint(3, V, (2, 4))
    out = model(x, y, output_attentions=True, output_hidden_states=True)
    B, S, T, H, C = 2, 6, 4, 2, c.embed_dim
    assert len(out.hidden_states) == c.num_decoder_layers + 1
    assert all(h.shape == (B, T, C) for h in out.hidden_states)
    assert len(out.extras["encoder_hidden_states"]) == c.num_encoder_layers + 1
    assert all(h.shape == (B, S, C) for h in out.extras["encoder_hidden_states"])
    assert len(out.attentions) == c.num_decoder_layers and out.attentions[0].shape == (B, H, T, T)
    assert len(out.cross_attentions) == c.num_decoder_layers and out.cross_attentions[0].shape == (B, H, T, S)
    assert len(out.extras["encoder_attentions"]) == c.num_encoder_layers
    assert out.extras["encoder_attentions"][0].shape == (B, H, S, S)
    # the last decoder hidden state makes the logits; the last encoder one is the encoder output
    assert_close(model.lm_head(out.hidden_states[-1]), out.logits)
    assert_close(out.extras["encoder_hidden_states"][-1], out.extras["encoder_last_hidden_state"])
    # decoder self-attention is causal; everything is a distribution over keys
    assert torch.all(out.attentions[0].triu(diagonal=1) == 0)
    assert_close(out.extras["encoder_attentions"][0].sum(-1), torch.ones(B, H, S))
    # without the flags nothing extra is returned
    plain = model(x, y)
    assert plain.attentions is None and plain.hidden_states is None and plain.cross_attentions is None
    assert "encoder_attentions" not in plain.extras


@pytest.mark.parametrize("positional", ["learned", "rotary"])
def test_kv_cached_decoding_equals_full_forward(positional):
    model = model_of(8, positional=positional)
    x = sources(2, 6)
    y = torch.randint(3, V, (2, 9))
    full = model(x, y).logits
    enc = model.encode(x)
    cache = model.new_cache()
    pieces = [model.decode(y[:, :3], enc, cache=cache).logits]
    pieces += [model.decode(y[:, t : t + 1], enc, cache=cache).logits for t in range(3, 9)]
    assert_close(torch.cat(pieces, 1), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 9 and cache.cross[0].k.shape[-2] == 6  # cross keys computed once


def test_source_and_target_length_limits():
    model = model_of(9)
    with pytest.raises(ValueError, match="max_source_len"):
        model(torch.full((1, 25), 3), torch.ones(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="max_target_len"):
        model(sources(1, 4), torch.full((1, 25), 3))
    with pytest.raises(ConfigError, match="max_new_tokens"):
        greedy_decode(model, sources(1, 4), max_new_tokens=25)
    with pytest.raises(ConfigError, match="beam_width"):
        beam_search(model, sources(1, 4), beam_width=0)


# -- decoding -------------------------------------------------------------------------------


def independent_log_prob(model: Seq2Seq, x: torch.Tensor, seq: list[int]) -> float:
    """log P(seq | x) from one teacher-forced forward pass, written out here."""
    dec_in = torch.tensor([[1] + seq[:-1]])
    with torch.no_grad():
        logp = torch.log_softmax(model(x, dec_in).logits[0], dim=-1)
    return float(sum(logp[t, tok] for t, tok in enumerate(seq)))


def trimmed(seq: torch.Tensor, eos: int = 2) -> list[int]:
    s = seq.tolist()
    return s[: s.index(eos) + 1] if eos in s else s


def test_greedy_picks_the_argmax_and_its_score_is_the_sequence_log_prob():
    model = peaked_model(10)
    x = sources(6, 5, seed=10)
    gen = greedy_decode(model, x, max_new_tokens=10)
    for i in range(6):
        seq = trimmed(gen.sequences[i])
        assert len(seq) == int(gen.lengths[i])
        assert bool(gen.finished[i]) == (seq[-1] == 2)
        assert gen.scores[i].item() == pytest.approx(independent_log_prob(model, x[i : i + 1], seq), abs=1e-4)
        # each token is the argmax given the tokens before it
        dec_in = torch.tensor([[1] + seq[:-1]])
        assert model(x[i : i + 1], dec_in).logits[0].argmax(-1).tolist() == seq
        assert torch.all(gen.sequences[i, len(seq) :] == 0)  # padding after <eos>
    assert_close(sequence_log_probs(model, x, gen.sequences), gen.scores, atol=1e-4, rtol=1e-5)


def test_kv_cached_and_uncached_decoding_agree():
    model = peaked_model(11)
    x = sources(5, 6, seed=11)
    a, b = greedy_decode(model, x, max_new_tokens=12), greedy_decode(model, x, max_new_tokens=12, use_cache=False)
    assert torch.equal(a.sequences, b.sequences)
    assert_close(a.scores, b.scores, atol=1e-5, rtol=1e-5)
    a = beam_search(model, x, beam_width=3, max_new_tokens=12)
    b = beam_search(model, x, beam_width=3, max_new_tokens=12, use_cache=False)
    assert torch.equal(a.beams, b.beams)
    assert_close(a.beam_scores, b.beam_scores, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_beam_width_one_is_greedy(length_penalty):
    model = peaked_model(12)
    x = sources(8, 6, seed=12)
    greedy = greedy_decode(model, x, max_new_tokens=12)
    beam = beam_search(model, x, beam_width=1, max_new_tokens=12, length_penalty=length_penalty)
    assert torch.equal(beam.sequences, greedy.sequences)
    assert_close(beam.scores, greedy.scores)
    assert torch.equal(beam.lengths, greedy.lengths)


def test_beam_search_finds_sequences_at_least_as_likely_as_greedy():
    """Over many inputs, with log-probabilities recomputed by a forward pass here."""
    model = peaked_model(1)
    x = sources(40, 6, seed=13)
    greedy = greedy_decode(model, x, max_new_tokens=8)
    beam = beam_search(model, x, beam_width=5, max_new_tokens=8, length_penalty=0.0)
    # outputs of many lengths, some cut at max_new_tokens: every case of the search is exercised
    assert len(set(greedy.lengths.tolist())) >= 3 and not bool(greedy.finished.all()) and bool(beam.finished.any())
    better = 0
    for i in range(40):
        g = independent_log_prob(model, x[i : i + 1], trimmed(greedy.sequences[i]))
        b = independent_log_prob(model, x[i : i + 1], trimmed(beam.sequences[i]))
        assert b >= g - 1e-4, (i, b, g)
        assert beam.scores[i].item() == pytest.approx(b, abs=1e-4)
        better += b > g + 1e-4
    assert better >= 5  # the search really finds better sequences, not just the greedy ones
    # the K hypotheses come best first and are distinct
    assert torch.all(beam.beam_ranking[:, :-1] >= beam.beam_ranking[:, 1:])
    for i in range(5):
        hyps = {tuple(trimmed(h)) for h in beam.beams[i]}
        assert len(hyps) == 5


def test_length_penalty_ranks_by_normalised_log_prob():
    model = peaked_model(14)
    x = sources(10, 6, seed=14)
    beam = beam_search(model, x, beam_width=4, max_new_tokens=10, length_penalty=1.0)
    lengths = torch.tensor([[len(trimmed(h)) for h in row] for row in beam.beams])
    assert_close(beam.beam_ranking, beam.beam_scores / lengths.float())


def test_generate_dispatches_and_decodes_a_batch_like_single_rows():
    model = peaked_model(15)
    x = torch.zeros(2, 7, dtype=torch.long)
    x[0, :4] = sources(1, 4, seed=1)[0]
    x[1] = sources(1, 7, seed=2)[0]
    both = model.generate(x, beam_width=3, max_new_tokens=10, length_penalty=0.0)
    for i, n in enumerate((4, 7)):
        one = model.generate(x[i : i + 1, :n], beam_width=3, max_new_tokens=10, length_penalty=0.0)
        assert trimmed(both.sequences[i]) == trimmed(one.sequences[0])
    assert torch.equal(
        model.generate(x, max_new_tokens=10).sequences, greedy_decode(model, x, max_new_tokens=10).sequences
    )


# -- checkpoints ---------------------------------------------------------------------------------


def test_checkpoint_round_trip(tmp_path):
    from attnlab.tokenizers import CharTokenizer

    model = model_of(16, bias=True)
    tok = CharTokenizer(list("abcdefghij"), specials=["<pad>", "<bos>", "<eos>"])
    model.save(tmp_path / "ck", tokenizer=tok, metadata={"task": {"name": "reverse"}})
    loaded, tok2 = load_model(tmp_path / "ck", expect="seq2seq")
    assert isinstance(loaded, Seq2Seq) and loaded.config == model.config
    x, y = sources(2, 5), torch.randint(3, V, (2, 4))
    assert_close(loaded(x, y).logits, model(x, y).logits)
    assert loaded.lm_head.weight is loaded.tok_emb.weight
    assert tok2.encode("jab") == tok.encode("jab")
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert meta["model_type"] == "seq2seq" and meta["task"] == {"name": "reverse"}
    assert not any(p.suffix in (".pt", ".pkl", ".bin") for p in (tmp_path / "ck").iterdir())
    assert isinstance(Seq2Seq.from_checkpoint(tmp_path / "ck"), Seq2Seq)
    with pytest.raises(CheckpointError, match="needs gpt"):
        load_model(tmp_path / "ck", expect="gpt")


def test_tiny_model_overfits_a_batch_and_decodes_it():
    torch.manual_seed(17)
    model = Seq2Seq(tiny())
    x = sources(4, 5, seed=17)
    labels = torch.cat([x[:, :-1].flip(1), torch.full((4, 1), 2)], 1)  # reversed source + <eos>
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss = model(x, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert loss.item() < 0.05
    assert torch.equal(greedy_decode(model, x, max_new_tokens=8).sequences[:, :5], labels)
