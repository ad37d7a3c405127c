"""Tests for attnlab.models.vit: patches, shapes, attention, rollout, training, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.config import from_dict
from attnlab.errors import ConfigError
from attnlab.models.outputs import ModelOutput
from attnlab.models.vit import VIT_PRESETS, PatchEmbedding, ViT, ViTConfig, attention_rollout, patch_attention_map


def tiny(**overrides) -> ViT:
    torch.manual_seed(0)
    return ViT(ViTConfig.from_name("tiny", **overrides))


# ---------------------------------------------------------------------------
# Patch embedding
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("image_size, patch_size, channels", [(28, 7, 1), (28, 4, 1), (8, 2, 3), (6, 3, 2)])
def test_patchify_reassembles_the_image(image_size, patch_size, channels):
    embed = PatchEmbedding(image_size, patch_size, channels, embed_dim=8)
    images = torch.rand(3, channels, image_size, image_size)
    patches = embed.patchify(images)
    G = image_size // patch_size
    assert patches.shape == (3, G * G, channels * patch_size**2)
    torch.testing.assert_close(embed.unpatchify(patches), images, rtol=0, atol=0)


def test_patch_n_is_row_n_div_g_column_n_mod_g_flattened_channel_first():
    embed = PatchEmbedding(6, 3, 2, embed_dim=4)
    images = torch.arange(2 * 2 * 6 * 6, dtype=torch.float32).reshape(2, 2, 6, 6)
    patches = embed.patchify(images)
    for n in range(4):
        r, c = divmod(n, 2)
        by_hand = images[:, :, 3 * r : 3 * r + 3, 3 * c : 3 * c + 3].reshape(2, -1)  # (C, P, P) flattened
        torch.testing.assert_close(patches[:, n], by_hand, rtol=0, atol=0)


def test_patch_embedding_equals_a_strided_convolution():
    torch.manual_seed(1)
    embed = PatchEmbedding(28, 7, 1, embed_dim=16)
    conv = nn.Conv2d(1, 16, kernel_size=7, stride=7)
    with torch.no_grad():
        conv.weight.copy_(embed.proj.weight.reshape(16, 1, 7, 7))
        conv.bias.copy_(embed.proj.bias)
    images = torch.randn(4, 1, 28, 28)
    reference = conv(images).flatten(2).transpose(1, 2)  # (B, N, E), patches in row-major order
    torch.testing.assert_close(embed(images), reference, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------
# Shapes, parameter counts, configs
# ---------------------------------------------------------------------------


def _count_by_formula(c: ViTConfig) -> int:
    E, F_ = c.embed_dim, c.hidden_dim
    patch = c.in_channels * c.patch_size**2 * E + E
    per_block = (3 * E * E + 3 * E) + (E * E + E) + (E * F_ + F_) + (F_ * E + E) + 2 * 2 * E  # qkv, out, ff, 2 norms
    return patch + E + c.seq_len * E + c.num_layers * per_block + 2 * E + E * c.num_classes + c.num_classes


@pytest.mark.parametrize("preset", list(VIT_PRESETS))
def test_shapes_and_parameter_counts(preset):
    config = ViTConfig.from_name(preset)
    model = ViT(config)
    assert model.num_parameters() == _count_by_formula(config)
    images = torch.rand(2, 1, config.image_size, config.image_size)
    out = model(images, torch.tensor([3, 4]), output_attentions=True, output_hidden_states=True)
    assert isinstance(out, ModelOutput) and out.logits.shape == (2, 10)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, torch.tensor([3, 4])))
    assert len(out.attentions) == config.num_layers
    assert all(a.shape == (2, config.num_heads, config.seq_len, config.seq_len) for a in out.attentions)
    for a in out.attentions:
        torch.testing.assert_close(a.sum(-1), torch.ones(2, config.num_heads, config.seq_len))
    assert len(out.hidden_states) == config.num_layers + 1
    assert all(h.shape == (2, config.seq_len, config.embed_dim) for h in out.hidden_states)
    assert out.extras["features"].shape == (2, config.embed_dim)


def test_mnist_preset_is_the_size_of_the_baselines():
    assert 100_000 <= ViT(ViTConfig.from_name("mnist")).num_parameters() <= 200_000
    assert ViTConfig.from_name("mnist").seq_len == 17 and ViTConfig.from_name("mnist-p4").seq_len == 50


def test_head_starts_at_zero_so_every_class_is_equally_likely():
    out = tiny()(torch.rand(3, 1, 28, 28), torch.tensor([0, 5, 9]))
    torch.testing.assert_close(out.logits, torch.zeros(3, 10))
    assert out.loss.item() == pytest.approx(math.log(10), rel=1e-6)


def test_without_positions_permuting_patches_does_not_change_the_cls_output():
    """Self-attention is permutation-equivariant: only the position embeddings tell the
    ViT where a patch was. With them zeroed, shuffling the patches changes nothing."""
    model = tiny(pool="cls")
    with torch.no_grad():
        model.pos_emb.zero_()
        nn.init.normal_(model.head.weight)  # a non-zero head, so logits carry information
    model.eval()
    images = torch.rand(2, 1, 28, 28)
    patches = model.patch_embed.patchify(images)
    shuffled = model.patch_embed.unpatchify(patches[:, torch.randperm(16, generator=torch.Generator().manual_seed(3))])
    assert not torch.equal(shuffled, images)
    torch.testing.assert_close(model(shuffled).logits, model(images).logits, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        nn.init.normal_(model.pos_emb)  # with positions, the order matters
    assert not torch.allclose(model(shuffled).logits, model(images).logits, atol=1e-4)


def test_mean_pooling_reads_the_patch_tokens():
    model = tiny(pool="mean")
    out = model(torch.rand(2, 1, 28, 28), output_hidden_states=True)
    torch.testing.assert_close(out.extras["features"], out.hidden_states[-1][:, 1:].mean(1))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(patch_size=5), "must divide model.image_size"),
        (dict(embed_dim=30, num_heads=4), "divisible"),
        (dict(dropout=1.0), "dropout"),
        (dict(pool="max"), "pool"),
        (dict(num_classes=1), "num_classes"),
        (dict(ff_dim=0), "ff_dim"),
    ],
)
def test_bad_configs(overrides, message):
    with pytest.raises(ConfigError, match=message):
        ViTConfig.from_name("tiny", **overrides)


def test_patch_size_error_lists_the_divisors():
    with pytest.raises(ConfigError, match="1, 2, 4, 7, 14, 28"):
        ViTConfig(image_size=28, patch_size=5)


def test_unknown_presets_and_fields():
    with pytest.raises(ConfigError, match="mnist"):
        ViTConfig.from_name("huge")
    with pytest.raises(ConfigError, match="patchsize"):
        ViTConfig.from_name("tiny", patchsize=4)
    with pytest.raises(ConfigError, match="unknown ViTConfig key"):
        from_dict(ViTConfig, {"image_size": 28, "colour": 3})


def test_wrong_image_shape_is_a_clear_error():
    model = tiny()
    with pytest.raises(ConfigError, match=r"\(B, 1, 28, 28\)"):
        model(torch.rand(2, 1, 32, 32))
    with pytest.raises(ConfigError, match=r"\(B, 1, 28, 28\)"):
        model(torch.rand(2, 3, 28, 28))


# ---------------------------------------------------------------------------
# Attention rollout
# ---------------------------------------------------------------------------


def test_rollout_of_two_layers_by_hand():
    a1 = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    a2 = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    # with the residual: 0.5 I + 0.5 A
    #   layer 1: [[1, 0], [0.25, 0.75]]   layer 2: [[0.5, 0.5], [0, 1]]
    #   rollout = layer2 @ layer1 = [[0.5 + 0.125, 0.375], [0.25, 0.75]]
    attentions = [a1[None, None], a2[None, None]]  # (B=1, H=1, T=2, T=2) each
    expected = torch.tensor([[[0.625, 0.375], [0.25, 0.75]]])
    torch.testing.assert_close(attention_rollout(attentions), expected)
    # without the residual it is the plain product of the attention matrices
    torch.testing.assert_close(attention_rollout(attentions, residual_weight=0.0), (a2 @ a1)[None])


def test_rollout_fuses_heads_and_renormalises_rows():
    head0 = torch.tensor([[0.8, 0.2], [0.4, 0.6]])
    head1 = torch.tensor([[0.2, 0.8], [0.6, 0.4]])
    layer = torch.stack([head0, head1])[None]  # (1, 2, 2, 2)
    mean = attention_rollout([layer], residual_weight=0.0)
    torch.testing.assert_close(mean, torch.full((1, 2, 2), 0.5))
    # max fusion: [[0.8, 0.8], [0.6, 0.6]] -> rows renormalised to [[0.5, 0.5], [0.5, 0.5]]
    torch.testing.assert_close(
        attention_rollout([layer], residual_weight=0.0, head_fusion="max"), torch.full((1, 2, 2), 0.5)
    )
    # max fusion with the residual: 0.5 I + 0.5 [[0.8, 0.8], [0.6, 0.6]] = [[0.9, 0.4], [0.3, 0.8]], / row sums
    expected = torch.tensor([[[0.9 / 1.3, 0.4 / 1.3], [0.3 / 1.1, 0.8 / 1.1]]])
    torch.testing.assert_close(attention_rollout([layer], head_fusion="max"), expected)


def test_rollout_rows_sum_to_one_on_a_real_model():
    out = tiny()(torch.rand(3, 1, 28, 28), output_attentions=True)
    rollout = attention_rollout(out.attentions)
    assert rollout.shape == (3, 17, 17) and (rollout >= 0).all()
    torch.testing.assert_close(rollout.sum(-1), torch.ones(3, 17))


def test_patch_map_is_the_cls_row_without_cls_renormalised():
    cls_row = torch.tensor([0.2, 0.4, 0.1, 0.2, 0.1])  # CLS, then 4 patches of a 2 x 2 grid
    weights = torch.eye(5).clone()
    weights[0] = cls_row
    layer = weights[None, None]  # (1, 1, 5, 5)
    expected = torch.tensor([[[0.5, 0.125], [0.25, 0.125]]])  # [0.4, 0.1, 0.2, 0.1] / 0.8
    torch.testing.assert_close(patch_attention_map([layer], 2, method="last_layer"), expected)
    # one layer of rollout with residual 0.5: CLS row = 0.5 e_0 + 0.5 cls_row -> patches unchanged after renormalising
    torch.testing.assert_close(patch_attention_map([layer], 2, method="rollout"), expected)


def test_attention_maps_of_the_model():
    model = tiny().eval()
    maps = model.attention_maps(torch.rand(2, 1, 28, 28))
    assert maps.shape == (2, 4, 4)
    torch.testing.assert_close(maps.sum((1, 2)), torch.ones(2))
    last = model.attention_maps(torch.rand(2, 1, 28, 28), method="last_layer")
    assert last.shape == (2, 4, 4)


def test_rollout_bad_inputs():
    with pytest.raises(ConfigError, match="at least one layer"):
        attention_rollout([])
    layer = torch.softmax(torch.randn(1, 2, 5, 5), -1)
    with pytest.raises(ConfigError, match="head_fusion"):
        attention_rollout([layer], head_fusion="median")
    with pytest.raises(ConfigError, match="residual_weight"):
        attention_rollout([layer], residual_weight=1.5)
    with pytest.raises(ConfigError, match="3 x 3"):
        patch_attention_map([layer], 3)
    with pytest.raises(ConfigError, match="method"):
        patch_attention_map([layer], 2, method="gradcam")


# ---------------------------------------------------------------------------
# Training and checkpoints
# ---------------------------------------------------------------------------


def test_overfits_a_tiny_batch():
    model = tiny()
    generator = torch.Generator().manual_seed(0)
    images, labels = torch.randn(10, 1, 28, 28, generator=generator), torch.arange(10)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    for _ in range(80):
        loss = model(images, labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    assert model(images, labels).loss.item() < 0.05
    assert (model(images).logits.argmax(-1) == labels).all()


def test_checkpoint_round_trip(tmp_path):
    from attnlab.models.registry import load_model

    model = tiny(pool="mean").eval()
    with torch.no_grad():
        nn.init.normal_(model.head.weight)
    model.save(tmp_path / "vit", metadata={"normalize_mean": 0.13})
    loaded, _ = load_model(tmp_path / "vit", expect="vit")
    assert isinstance(loaded, ViT) and loaded.config == model.config
    images = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(loaded(images).logits, model(images).logits)
    assert ViT.from_checkpoint(tmp_path / "vit").config.pool == "mean"


# ---------------------------------------------------------------------------
# Convolutional stem (conv_stem)
# ---------------------------------------------------------------------------


def test_conv_stem_is_off_by_default_and_adds_no_weights():
    assert ViTConfig().conv_stem == () and all(ViTConfig.from_name(p).conv_stem == () for p in VIT_PRESETS)
    model = tiny()
    assert model.stem is None
    assert not any(name.startswith("stem") for name in model.state_dict())
    # a config.json written before the option existed (no conv_stem key) builds the same, stem-less ViT
    from attnlab.config import to_dict

    old = {k: v for k, v in to_dict(model.config).items() if k != "conv_stem"}
    assert from_dict(ViTConfig, old) == model.config


def test_conv_stem_shapes_and_parameters():
    model = tiny(conv_stem=(4, 6))
    assert model.config.patch_channels == 6
    assert model.patch_embed.proj.in_features == 6 * 7 * 7
    out = model(torch.rand(3, 1, 28, 28), torch.tensor([0, 1, 2]))
    assert out.logits.shape == (3, 10) and out.loss.ndim == 0
    stem = (1 * 4 * 9 + 2 * 4) + (4 * 6 * 9 + 2 * 6)  # conv weights (no bias) + BatchNorm gain and shift
    plain = tiny().num_parameters() - 1 * 49 * 16  # without the patch projection's weight
    assert model.num_parameters() == plain + 6 * 49 * 16 + stem


@pytest.mark.parametrize("train", [True, False])
def test_conv_stem_matches_torch_conv_bn_relu_and_feeds_the_patches(train):
    model = tiny(conv_stem=(4, 6)).train(train)
    reference = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1, bias=False),
        nn.BatchNorm2d(6),
        nn.ReLU(),
    ).train(train)
    with torch.no_grad():  # non-trivial BatchNorm statistics and affine parameters
        for bn in (model.stem[1], model.stem[4]):
            bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-0.2, 0.2)
    reference.load_state_dict(model.stem.state_dict())
    images = torch.rand(2, 1, 28, 28)
    features = reference(images)
    torch.testing.assert_close(model.stem(images), features)
    # the forward pass cuts the stem's features (not the pixels) into patches
    B = images.shape[0]
    x = torch.cat([model.cls_token.expand(B, -1, -1), model.patch_embed(features)], dim=1) + model.pos_emb
    for block in model.blocks:
        x = block(x).hidden
    expected = model.head(model.norm(x)[:, 0])
    torch.testing.assert_close(model(images).logits, expected)  # (train mode: batch statistics, same batch)


def test_conv_stem_bad_configs_and_images():
    for bad in [(0,), (4, -1), tuple([4] * 17)]:
        with pytest.raises(ConfigError, match="conv_stem"):
            ViTConfig(conv_stem=bad)
    with pytest.raises(ConfigError, match=r"\(B, 1, 28, 28\)"):
        tiny(conv_stem=(4,))(torch.rand(2, 3, 28, 28))


def test_conv_stem_checkpoint_round_trip(tmp_path):
    from attnlab.models.registry import load_model

    model = tiny(conv_stem=(4, 6))
    model.train()(torch.rand(8, 1, 28, 28))  # move the BatchNorm statistics off their start
    model.eval()
    model.save(tmp_path / "vit")
    loaded, _ = load_model(tmp_path / "vit", expect="vit")
    assert loaded.config.conv_stem == (4, 6) and loaded.config == model.config
    torch.testing.assert_close(loaded.stem[1].running_mean, model.stem[1].running_mean)
    images = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(loaded.eval()(images).logits, model(images).logits)
