"""Encoder: config, heads and losses, padding invariance, permutation equivariance, layouts, checkpoints."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from attnlab.errors import ConfigError
from attnlab.models.encoder import (
    ENCODER_PRESETS,
    ESM_MASK_RATIO_TRAIN,
    Encoder,
    EncoderConfig,
    encode_with_specials,
    pad_batch,
    pool_hidden,
)
from attnlab.models.registry import load_model


def mini(**kw) -> EncoderConfig:
    return EncoderConfig.from_name("mini", vocab_size=23, **kw)


def test_presets_build_and_validate():
    for name in ENCODER_PRESETS:
        cfg = EncoderConfig.from_name(name)
        assert cfg.embed_dim % cfg.num_heads == 0
    protein = EncoderConfig.from_name("protein-small")
    assert (protein.norm_first, protein.positional, protein.embed_norm, protein.final_norm) == (
        True,
        "rotary",
        False,
        True,
    )
    assert (protein.vocab_size, protein.pad_token_id, protein.mask_token_id) == (33, 1, 32)  # ESM-2 alphabet ids
    small = EncoderConfig.from_name("small")
    assert (small.norm_first, small.positional, small.embed_norm) == (False, "learned", True)
    with pytest.raises(ConfigError, match="unknown encoder preset"):
        EncoderConfig.from_name("huge")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(embed_dim=30, num_heads=4), "divisible"),
        (dict(dropout=1.0), "dropout"),
        (dict(num_layers=0), "num_layers"),
        (dict(token_dropout=True, mask_token_id=None), "mask_token_id"),
        (dict(pad_token_id=99), "pad_token_id"),
        (dict(head="token", num_labels=1), "num_labels"),
        (dict(type_vocab_size=-1), "type_vocab_size"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        EncoderConfig(vocab_size=64, **kwargs)


def test_mlm_logits_loss_and_ignored_positions():
    torch.manual_seed(0)
    model = Encoder(mini()).eval()
    x = torch.randint(0, 23, (2, 10))
    labels = torch.full((2, 10), -100)
    labels[0, 3], labels[1, 7] = 5, 9
    out = model(x, labels=labels)
    assert out.logits.shape == (2, 10, 23)
    expected = F.cross_entropy(torch.stack([out.logits[0, 3], out.logits[1, 7]]), torch.tensor([5, 9]))
    assert_close(out.loss, expected)
    # nothing scored: a zero loss that still has a gradient, not NaN
    empty = model(x, labels=torch.full((2, 10), -100)).loss
    assert float(empty.detach()) == 0.0 and empty.requires_grad


def test_mlm_decoder_is_tied_to_token_embedding():
    model = Encoder(mini())
    assert model.mlm_head.decoder.weight is model.tok_emb.weight
    untied = Encoder(mini(tie_weights=False))
    assert untied.num_parameters() == model.num_parameters() + 23 * 32


def test_sequence_head_pooling_and_losses():
    torch.manual_seed(1)
    x = torch.randint(0, 23, (3, 8))
    attention_mask = torch.ones(3, 8, dtype=torch.long)
    attention_mask[1, 5:] = 0
    for pooling in ("cls", "mean"):
        model = Encoder(mini(head="sequence", num_labels=4, pooling=pooling)).eval()
        labels = torch.tensor([0, 3, 1])
        out = model(x, attention_mask=attention_mask, labels=labels)
        hidden = out.extras["last_hidden_state"]
        if pooling == "cls":
            pooled = hidden[:, 0]
        else:  # mean over the real tokens, computed by hand
            pooled = torch.stack([hidden[b, : int(attention_mask[b].sum())].mean(0) for b in range(3)])
        assert_close(out.extras["pooled"], pooled)
        assert_close(out.logits, model.classifier(pooled))
        assert_close(out.loss, F.cross_entropy(out.logits, labels))
    regression = Encoder(mini(head="sequence", num_labels=1)).eval()
    y = torch.tensor([0.5, -1.0, 2.0])
    out = regression(x, labels=y)
    assert_close(out.loss, F.mse_loss(out.logits.squeeze(-1), y))


def test_token_head_loss_ignores_unscored_positions():
    torch.manual_seed(2)
    model = Encoder(mini(head="token", num_labels=3)).eval()
    x = torch.randint(0, 23, (2, 6))
    labels = torch.randint(0, 3, (2, 6))
    labels[:, 4:] = -100
    out = model(x, labels=labels)
    assert out.logits.shape == (2, 6, 3)
    assert_close(out.loss, F.cross_entropy(out.logits[:, :4].reshape(-1, 3), labels[:, :4].reshape(-1)))


def test_no_head_returns_states_only():
    model = Encoder(mini(head="none")).eval()
    out = model(torch.randint(0, 23, (1, 5)))
    assert out.logits is None and out.loss is None
    assert out.extras["last_hidden_state"].shape == (1, 5, 32)
    with pytest.raises(ValueError, match="no head"):
        model(torch.randint(0, 23, (1, 5)), labels=torch.zeros(1, 5, dtype=torch.long))


LAYOUTS = {
    "bert": dict(),
    "esm2": dict(
        norm_first=True,
        positional="rotary",
        embed_norm=False,
        final_norm=True,
        token_dropout=True,
        mask_token_id=22,
        pad_token_id=1,
    ),
    "sinusoidal-types": dict(positional="sinusoidal", type_vocab_size=2),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_padding_never_changes_real_tokens(layout):
    torch.manual_seed(3)
    model = Encoder(mini(**LAYOUTS[layout])).eval()
    x = torch.randint(2, 22, (1, 7))
    x[0, 2] = 22 if layout == "esm2" else x[0, 2]  # a mask token exercises token dropout's ratio
    alone = model(x, output_hidden_states=True)
    padded_ids = torch.cat([x, torch.full((1, 4), 1)], dim=1)
    attention_mask = torch.tensor([[1] * 7 + [0] * 4])
    padded = model(padded_ids, attention_mask=attention_mask, output_hidden_states=True)
    assert_close(padded.logits[:, :7], alone.logits, atol=1e-5, rtol=1e-5)
    for a, b in zip(alone.hidden_states, padded.hidden_states):
        assert_close(b[:, :7], a, atol=1e-5, rtol=1e-5)
    assert_close(
        model(padded_ids, attention_mask=attention_mask).extras["pooled"], alone.extras["pooled"], atol=1e-5, rtol=1e-5
    )


def test_without_positions_permuting_input_permutes_output():
    torch.manual_seed(4)
    model = Encoder(mini(positional="none")).eval()
    x = torch.randint(0, 23, (2, 9))
    perm = torch.randperm(9)
    assert_close(model(x[:, perm]).logits, model(x).logits[:, perm], atol=1e-5, rtol=1e-5)
    # with positions it is no longer equivariant
    positional = Encoder(mini()).eval()
    assert not torch.allclose(positional(x[:, perm]).logits, positional(x).logits[:, perm], atol=1e-4)


def test_every_token_sees_the_future():
    torch.manual_seed(5)
    model = Encoder(mini()).eval()
    x = torch.randint(0, 23, (1, 8))
    x2 = x.clone()
    x2[0, 7] = (x[0, 7] + 1) % 23
    assert not torch.allclose(model(x).logits[:, 0], model(x2).logits[:, 0])  # bidirectional, unlike a GPT


def test_hidden_states_and_attentions_follow_hf_layout():
    torch.manual_seed(6)
    cfg = mini(num_layers=3, final_norm=True, norm_first=True)
    model = Encoder(cfg).eval()
    x = torch.randint(0, 23, (2, 6))
    attention_mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    out = model(x, attention_mask=attention_mask, output_hidden_states=True, output_attentions=True)
    assert len(out.hidden_states) == 4 and all(h.shape == (2, 6, 32) for h in out.hidden_states)
    assert len(out.attentions) == 3 and all(a.shape == (2, 2, 6, 6) for a in out.attentions)
    assert_close(out.hidden_states[0], model.embed(x, attention_mask))
    assert_close(out.hidden_states[-1], out.extras["last_hidden_state"])  # after the final norm
    assert_close(out.extras["last_hidden_state"], model.encode(x, attention_mask))
    for a in out.attentions:
        assert_close(a.sum(-1), torch.ones(2, 2, 6))  # softmax rows
        assert float(a[1, :, :, 4:].detach().abs().max()) == 0.0  # padded keys get no weight


def test_block_stack_matches_torch_transformer_encoder_layers():
    """Post-norm BERT layers equal nn.TransformerEncoderLayer (norm_first=False, gelu) with copied weights."""
    torch.manual_seed(7)
    model = Encoder(mini(embed_norm=False, layer_norm_eps=1e-5)).eval()
    x = torch.randint(0, 23, (2, 5))
    h = model.embed(x)
    for block in model.blocks:
        ref = nn.TransformerEncoderLayer(
            32, 2, 128, dropout=0.0, activation="gelu", batch_first=True, norm_first=False
        ).eval()
        with torch.no_grad():
            ref.self_attn.in_proj_weight.copy_(block.attn.qkv.weight)
            ref.self_attn.in_proj_bias.copy_(block.attn.qkv.bias)
            ref.self_attn.out_proj.weight.copy_(block.attn.out.weight)
            ref.self_attn.out_proj.bias.copy_(block.attn.out.bias)
            ref.linear1.load_state_dict(block.ff.fc1.state_dict())
            ref.linear2.load_state_dict(block.ff.fc2.state_dict())
            ref.norm1.load_state_dict(block.norm1.state_dict())
            ref.norm2.load_state_dict(block.norm2.state_dict())
        h_ref = ref(h)
        h = block(h).hidden
        assert_close(h, h_ref, atol=1e-5, rtol=1e-5)
    assert_close(model.encode(x), h, atol=1e-5, rtol=1e-5)


def test_token_dropout_scaling_by_hand():
    cfg = mini(token_dropout=True, mask_token_id=22, embed_norm=False, positional="rotary")
    model = Encoder(cfg).eval()
    x = torch.tensor([[3, 22, 5, 6, 7]])  # one of five tokens is <mask>
    emb = model.embed(x)
    scale = (1 - ESM_MASK_RATIO_TRAIN) / (1 - 1 / 5)
    assert_close(emb[0, 1], torch.zeros(32))
    assert_close(emb[0, 0], model.tok_emb.weight[3] * scale)
    # with padding, the ratio counts real tokens only
    padded = model.embed(torch.tensor([[3, 22, 5, 6, 7, 1, 1]]), torch.tensor([[1, 1, 1, 1, 1, 0, 0]]))
    assert_close(padded[0, :5], emb[0])


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(8)
    model = Encoder(mini(type_vocab_size=2, head="mlm")).eval()
    model.save(tmp_path / "ck")
    loaded, tokenizer = load_model(tmp_path / "ck", expect="encoder")
    assert tokenizer is None and loaded.config == model.config
    assert loaded.mlm_head.decoder.weight is loaded.tok_emb.weight  # tying survives the round trip
    x = torch.randint(0, 23, (2, 7))
    types = torch.randint(0, 2, (2, 7))
    assert_close(loaded(x, token_type_ids=types).logits, model(x, token_type_ids=types).logits)
    assert_close(Encoder.from_checkpoint(tmp_path / "ck")(x).logits, model(x).logits)


def test_too_long_input_is_rejected():
    model = Encoder(mini()).eval()
    with pytest.raises(ValueError, match="exceeds the context of 32"):
        model(torch.zeros(1, 33, dtype=torch.long))


def test_helpers_pool_pad_and_specials():
    ids, mask = pad_batch([[1, 2, 3], [4]], pad_id=0)
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [[1.0, 1.0], [9.0, 9.0], [9.0, 9.0]]])
    assert_close(pool_hidden(hidden, mask, "mean"), torch.tensor([[3.0, 4.0], [1.0, 1.0]]))
    assert_close(pool_hidden(hidden, mask, "cls"), torch.tensor([[1.0, 2.0], [1.0, 1.0]]))
    from attnlab.tokenizers import CharTokenizer, WordTokenizer

    char = CharTokenizer.train("abc", specials=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    assert encode_with_specials(char, "ab") == [2, char.stoi["a"], char.stoi["b"], 3]
    word = WordTokenizer.train("a b", specials=["[CLS]", "[SEP]", "[MASK]"])  # [CLS]/[SEP] win over <bos>/<eos>
    assert encode_with_specials(word, "a")[0] == word.special_tokens["[CLS]"]


def test_dropout_only_in_training():
    torch.manual_seed(9)
    model = Encoder(dataclasses.replace(mini(), dropout=0.5))
    x = torch.randint(0, 23, (1, 6))
    model.eval()
    assert_close(model(x).logits, model(x).logits)
    model.train()
    assert not torch.allclose(model(x).logits, model(x).logits)
