"""BERT-family (BERT, MiniLM, RoBERTa) Hugging Face weights -> attnlab `Encoder`.

BERT (Devlin et al. 2019) is a post-norm encoder:
    x = LayerNorm(word + position + token_type embeddings)
    each layer: x = LayerNorm(x + attn(x));  x = LayerNorm(x + ff(x))
which is `EncoderConfig(norm_first=False, positional="learned", embed_norm=True, ...)`.
Name by name:
    embeddings.word_embeddings / position_embeddings / token_type_embeddings / LayerNorm
        -> tok_emb / pos_emb / type_emb / emb_norm
    encoder.layer.{i}.attention.self.query|key|value -> blocks.{i}.attn.qkv (rows stacked q, k, v)
    encoder.layer.{i}.attention.output.dense / .LayerNorm -> blocks.{i}.attn.out / norm1
    encoder.layer.{i}.intermediate.dense / output.dense / output.LayerNorm -> ff.fc1 / ff.fc2 / norm2
    cls.predictions.transform.dense / .LayerNorm, cls.predictions.bias (BertForMaskedLM)
        -> mlm_head.dense / norm / bias (the decoder is tied to tok_emb)
MiniLM (all-MiniLM-L6-v2) is a 6-layer, 384-wide BERT: the same code imports it.
RoBERTa (Liu et al. 2019) differs only in its positions, which start at pad_token_id + 1:
the table rows before that are dropped so that our positions 0, 1, ... line up.
The pooler (dense + tanh on [CLS]) and task heads other than masked-LM are not imported.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor

from attnlab.errors import CheckpointError
from attnlab.interop.gpt2 import HF_TO_ACTIVATION
from attnlab.interop.hf import HFCheckpoint, load_converted, strip_prefix, take
from attnlab.models.encoder import Encoder, EncoderConfig

logger = logging.getLogger(__name__)


def hf_activation(name: Any, where: Any) -> str:
    """Our activation name for a Hugging Face `hidden_act`."""
    if name not in HF_TO_ACTIVATION:
        raise CheckpointError(
            f"{where}: activation {name!r} is not supported (supported: {', '.join(HF_TO_ACTIVATION)})"
        )
    return HF_TO_ACTIVATION[name]


def stacked_qkv(s: dict[str, Tensor], prefix: str, where: Any) -> tuple[Tensor, Tensor]:
    """Separate query/key/value linear layers under `prefix` -> our fused (3C, C) weight and (3C,) bias."""
    weight = torch.cat([take(s, f"{prefix}{n}.weight", where) for n in ("query", "key", "value")], dim=0)
    bias = torch.cat([take(s, f"{prefix}{n}.bias", where) for n in ("query", "key", "value")], dim=0)
    return weight, bias


def copy_linear(out: dict[str, Tensor], ours: str, s: dict[str, Tensor], theirs: str, where: Any) -> None:
    """out[ours.weight/.bias] = s[theirs.weight/.bias]."""
    out[ours + ".weight"] = take(s, theirs + ".weight", where)
    out[ours + ".bias"] = take(s, theirs + ".bias", where)


def mlm_head_names(s: dict[str, Tensor], kind: str) -> dict[str, str] | None:
    """Names of the masked-LM head's parts in this checkpoint, or None if it has none."""
    if kind == "bert" and "cls.predictions.transform.dense.weight" in s:
        return {
            "dense": "cls.predictions.transform.dense",
            "norm": "cls.predictions.transform.LayerNorm",
            "bias": "cls.predictions.bias",
            "decoder": "cls.predictions.decoder",
        }
    if kind in ("roberta", "esm") and "lm_head.dense.weight" in s:
        return {
            "dense": "lm_head.dense",
            "norm": "lm_head.layer_norm",
            "bias": "lm_head.bias",
            "decoder": "lm_head.decoder",
        }
    return None


def add_mlm_head(out: dict[str, Tensor], s: dict[str, Tensor], names: dict[str, str], word: Tensor, where: Any) -> bool:
    """Copy a masked-LM head; returns whether its decoder is tied to the word embeddings."""
    copy_linear(out, "mlm_head.dense", s, names["dense"], where)
    copy_linear(out, "mlm_head.norm", s, names["norm"], where)
    bias = s.get(names["bias"], s.get(names["decoder"] + ".bias"))
    if bias is None:
        raise CheckpointError(f"{where}: the masked-LM head has no output bias ({names['bias']})")
    out["mlm_head.bias"] = bias
    decoder = s.get(names["decoder"] + ".weight")
    tied = decoder is None or torch.equal(decoder, word)
    if not tied:
        out["mlm_head.decoder.weight"] = decoder
    return tied


def bert_config_to_attnlab(
    config: dict[str, Any],
    *,
    has_mlm: bool,
    tied: bool = True,
    mask_token_id: int | None = None,
    where: Any = "BERT config",
) -> EncoderConfig:
    """Our `EncoderConfig` for a Hugging Face BERT or RoBERTa config dict."""
    kind = config.get("model_type")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise CheckpointError(
            f"{where}: position_embedding_type {config.get('position_embedding_type')!r} is not supported (only absolute)"
        )
    if config.get("is_decoder") or config.get("add_cross_attention"):
        raise CheckpointError(f"{where}: BERT used as a decoder is not supported; import encoder checkpoints")
    pad = config.get("pad_token_id")
    positions = int(config.get("max_position_embeddings", 512))
    if kind == "roberta":
        positions -= int(pad if pad is not None else 1) + 1  # rows 0..pad are never used by real tokens
    vocab_size = int(config["vocab_size"])
    if mask_token_id is not None and not 0 <= mask_token_id < vocab_size:
        mask_token_id = None
    return EncoderConfig(
        vocab_size=vocab_size,
        max_seq_len=positions,
        num_layers=int(config["num_hidden_layers"]),
        num_heads=int(config["num_attention_heads"]),
        embed_dim=int(config["hidden_size"]),
        ff_dim=int(config["intermediate_size"]),
        dropout=float(config.get("hidden_dropout_prob", 0.1) or 0.0),
        activation=hf_activation(config.get("hidden_act", "gelu"), where),  # type: ignore[arg-type]
        norm_first=False,
        positional="learned",
        type_vocab_size=int(config.get("type_vocab_size", 2) or 0),
        embed_norm=True,
        final_norm=False,
        layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
        bias=True,
        pad_token_id=int(pad) if pad is not None and 0 <= int(pad) < vocab_size else None,
        mask_token_id=mask_token_id,
        head="mlm" if has_mlm else "none",
        pooling="mean",
        tie_weights=tied,
        init_std=float(config.get("initializer_range", 0.02)),
    )


def import_bert(checkpoint: HFCheckpoint, tokenizer: Any | None = None) -> Encoder:
    """Build our `Encoder` from a BERT / MiniLM / RoBERTa checkpoint (base model, with its
    masked-LM head when the checkpoint has one).

    Args:
        checkpoint: the Hugging Face folder read by `read_hf_checkpoint`.
        tokenizer: its tokenizer (supplies the mask token id), or None.
    Returns:
        An `Encoder` in eval mode whose hidden states equal the Hugging Face model's.
    """
    where = checkpoint.folder
    kind = checkpoint.model_type
    s = strip_prefix(checkpoint.state, ("bert.", "roberta."))
    names = mlm_head_names(s, kind)
    out: dict[str, Tensor] = {}
    word = take(s, "embeddings.word_embeddings.weight", where)
    tied = True
    if names is not None:
        tied = add_mlm_head(out, s, names, word, where)
    if (
        checkpoint.architecture
        and names is None
        and checkpoint.architecture.endswith(
            ("ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering")
        )
    ):
        logger.warning("%s: the %s head is not imported; the encoder gets no head", where, checkpoint.architecture)
    mask_id = tokenizer.mask_id if tokenizer is not None else None
    cfg = bert_config_to_attnlab(
        checkpoint.config, has_mlm=names is not None, tied=tied, mask_token_id=mask_id, where=where
    )
    positions = take(s, "embeddings.position_embeddings.weight", where)
    if kind == "roberta":
        start = (cfg.pad_token_id if cfg.pad_token_id is not None else 1) + 1
        positions = positions[start : start + cfg.max_seq_len]
    out["tok_emb.weight"] = word
    out["pos_emb.weight"] = positions
    if cfg.type_vocab_size > 0:
        out["type_emb.weight"] = take(s, "embeddings.token_type_embeddings.weight", where)
    copy_linear(out, "emb_norm", s, "embeddings.LayerNorm", where)
    for i in range(cfg.num_layers):
        h, b = f"encoder.layer.{i}.", f"blocks.{i}."
        out[b + "attn.qkv.weight"], out[b + "attn.qkv.bias"] = stacked_qkv(s, h + "attention.self.", where)
        copy_linear(out, b + "attn.out", s, h + "attention.output.dense", where)
        copy_linear(out, b + "norm1", s, h + "attention.output.LayerNorm", where)
        copy_linear(out, b + "ff.fc1", s, h + "intermediate.dense", where)
        copy_linear(out, b + "ff.fc2", s, h + "output.dense", where)
        copy_linear(out, b + "norm2", s, h + "output.LayerNorm", where)
    model = Encoder(cfg)
    load_converted(model, out, where)
    return model.eval()
