"""ESM (ESM-2, ESM-1b) Hugging Face weights -> attnlab `Encoder`.

ESM-2 (Lin et al. 2023) is a pre-norm encoder with rotary positions:
    x = token_dropout(word embeddings)                      (no embedding LayerNorm)
    each layer: x = x + attn(LN(x));  x = x + ff(LN(x))       (exact erf GELU)
    x = emb_layer_norm_after(x)
which is `EncoderConfig(norm_first=True, positional="rotary", embed_norm=False,
final_norm=True, token_dropout=True)`. Semantics checked against `transformers`'
modeling_esm.py:
  * "token dropout": embeddings of <mask> tokens are zeroed and every embedding is
    scaled by (1 - 0.15 * 0.8) / (1 - share of <mask> among the sequence's real tokens),
    in training and inference alike;
  * queries are scaled by 1/sqrt(D) *before* the rotation, which equals scaling the
    scores after it (the rotation is linear), so our attention matches;
  * rotary positions are 0, 1, ... for every row (padding is on the right);
  * `emb_layer_norm_after` is the final norm; Hugging Face's last hidden state is after it.
ESM-1b uses learned positions that start at pad_token_id + 1 and an embedding LayerNorm
(`emb_layer_norm_before`); both are handled. The contact-prediction head and the pooler
are not imported; EsmForMaskedLM's `lm_head` is.

Name by name:
    embeddings.word_embeddings -> tok_emb;  embeddings.layer_norm -> emb_norm (ESM-1b)
    encoder.layer.{i}.attention.self.query|key|value -> blocks.{i}.attn.qkv
    encoder.layer.{i}.attention.output.dense -> blocks.{i}.attn.out
    encoder.layer.{i}.attention.LayerNorm -> blocks.{i}.norm1 (before attention)
    encoder.layer.{i}.LayerNorm -> blocks.{i}.norm2 (before the feed-forward)
    encoder.layer.{i}.intermediate.dense / output.dense -> ff.fc1 / ff.fc2
    encoder.emb_layer_norm_after -> norm
    lm_head.dense / layer_norm / bias -> mlm_head.dense / norm / bias
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from attnlab.errors import CheckpointError
from attnlab.interop.bert import add_mlm_head, copy_linear, hf_activation, mlm_head_names, stacked_qkv
from attnlab.interop.hf import HFCheckpoint, load_converted, strip_prefix, take
from attnlab.models.encoder import Encoder, EncoderConfig


def esm_config_to_attnlab(
    config: dict[str, Any], *, has_mlm: bool, tied: bool = True, where: Any = "ESM config"
) -> EncoderConfig:
    """Our `EncoderConfig` for a Hugging Face ESM config dict."""
    if config.get("is_folding_model"):
        raise CheckpointError(f"{where}: ESMFold (is_folding_model) is not supported; import an ESM-2 language model")
    if config.get("is_decoder") or config.get("add_cross_attention"):
        raise CheckpointError(f"{where}: ESM used as a decoder is not supported")
    kind = config.get("position_embedding_type", "absolute")
    if kind not in ("rotary", "absolute"):
        raise CheckpointError(f"{where}: position_embedding_type {kind!r} is not supported (rotary or absolute)")
    pad = config.get("pad_token_id")
    vocab_size = int(config["vocab_size"])
    positions = int(config.get("max_position_embeddings", 1026))
    if kind == "absolute":
        positions -= int(pad if pad is not None else 1) + 1  # positions start at pad + 1
    mask = config.get("mask_token_id")
    token_dropout = bool(config.get("token_dropout", False))
    if token_dropout and mask is None:
        raise CheckpointError(f"{where}: token_dropout is on but the config has no mask_token_id")
    rope = config.get("rope_theta")
    if rope is None and isinstance(config.get("rope_parameters"), dict):
        rope = config["rope_parameters"].get("rope_theta")
    return EncoderConfig(
        vocab_size=vocab_size,
        max_seq_len=positions,
        num_layers=int(config["num_hidden_layers"]),
        num_heads=int(config["num_attention_heads"]),
        embed_dim=int(config["hidden_size"]),
        ff_dim=int(config["intermediate_size"]),
        dropout=float(config.get("hidden_dropout_prob", 0.0) or 0.0),
        activation=hf_activation(config.get("hidden_act", "gelu"), where),  # type: ignore[arg-type]
        norm_first=True,
        positional="rotary" if kind == "rotary" else "learned",
        rope_base=float(rope if rope is not None else 10000.0),
        type_vocab_size=0,
        embed_norm=bool(config.get("emb_layer_norm_before", False)),
        final_norm=True,
        layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
        bias=True,
        pad_token_id=int(pad) if pad is not None else None,
        mask_token_id=int(mask) if mask is not None else None,
        token_dropout=token_dropout,
        head="mlm" if has_mlm else "none",
        pooling="mean",
        tie_weights=tied,
        init_std=float(config.get("initializer_range", 0.02)),
    )


def import_esm(checkpoint: HFCheckpoint) -> Encoder:
    """Build our `Encoder` from an ESM checkpoint (EsmModel or EsmForMaskedLM).

    Returns:
        An `Encoder` in eval mode whose hidden states equal the Hugging Face model's.
    """
    where = checkpoint.folder
    s = strip_prefix(checkpoint.state, ("esm.",))
    names = mlm_head_names(s, "esm")
    out: dict[str, Tensor] = {}
    word = take(s, "embeddings.word_embeddings.weight", where)
    tied = add_mlm_head(out, s, names, word, where) if names is not None else True
    cfg = esm_config_to_attnlab(checkpoint.config, has_mlm=names is not None, tied=tied, where=where)
    out["tok_emb.weight"] = word
    if cfg.positional == "learned":
        start = (cfg.pad_token_id if cfg.pad_token_id is not None else 1) + 1
        out["pos_emb.weight"] = take(s, "embeddings.position_embeddings.weight", where)[start : start + cfg.max_seq_len]
    if cfg.embed_norm:
        copy_linear(out, "emb_norm", s, "embeddings.layer_norm", where)
    for i in range(cfg.num_layers):
        h, b = f"encoder.layer.{i}.", f"blocks.{i}."
        out[b + "attn.qkv.weight"], out[b + "attn.qkv.bias"] = stacked_qkv(s, h + "attention.self.", where)
        copy_linear(out, b + "attn.out", s, h + "attention.output.dense", where)
        copy_linear(out, b + "norm1", s, h + "attention.LayerNorm", where)
        copy_linear(out, b + "norm2", s, h + "LayerNorm", where)
        copy_linear(out, b + "ff.fc1", s, h + "intermediate.dense", where)
        copy_linear(out, b + "ff.fc2", s, h + "output.dense", where)
    copy_linear(out, "norm", s, "encoder.emb_layer_norm_after", where)
    model = Encoder(cfg)
    load_converted(model, out, where)
    return model.eval()
