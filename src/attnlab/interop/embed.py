"""Sentence (or sequence) embeddings from an encoder: tokenize, pad, encode, pool, normalise.

This is what sentence-transformers does for all-MiniLM-L6-v2 (Reimers & Gurevych 2019,
"Sentence-BERT"): `[CLS] text [SEP]`, the encoder's last hidden states, the mean over
the real tokens (special tokens included, padding excluded), then L2 normalisation.
Texts are sorted by length and batched so that little padding is computed; the
result comes back in the input order. Text longer than the model's context is an
error naming its length unless truncation is asked for explicitly.

Notation: N texts, B batch, T tokens, C channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from attnlab.errors import ConfigError, DataError
from attnlab.models.encoder import encode_with_specials, pad_batch, pool_hidden

POOLINGS = ("mean", "cls")


def tokenize_texts(tokenizer: Any, texts: Sequence[str], max_len: int, *, truncate: bool = False) -> list[list[int]]:
    """`[CLS] text [SEP]` ids of each text, checked against the context length.

    Args:
        tokenizer: the model's tokenizer.
        texts: N texts.
        max_len: the model's context (most tokens per text, specials included).
        truncate: cut long texts to `max_len` tokens (keeping the final [SEP]) instead of failing.
    Raises:
        DataError: a text is longer than `max_len` tokens and `truncate` is off.
    """
    rows = []
    for i, text in enumerate(texts):
        ids = encode_with_specials(tokenizer, text)
        if len(ids) > max_len:
            if not truncate:
                preview = text if len(text) <= 40 else text[:37] + "..."
                raise DataError(
                    f"text {i + 1} ({preview!r}) is {len(ids)} tokens long (special tokens included) but the model's "
                    f"context is {max_len} tokens; shorten it, or pass --truncate to keep its first {max_len} tokens"
                )
            ids = ids[: max_len - 1] + ids[-1:]  # keep the closing [SEP] / <eos>, as Hugging Face truncation does
        rows.append(ids)
    return rows


@torch.inference_mode()
def embed_texts(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    pool: str = "mean",
    normalize: bool = False,
    truncate: bool = False,
    batch_size: int = 32,
) -> Tensor:
    """One vector per text from an attnlab `Encoder`.

    Args:
        model: an `Encoder` (eval mode is set here).
        tokenizer: its tokenizer.
        texts: N texts (for protein models: sequences).
        pool: "mean" over real tokens or "cls" (the first token's state).
        normalize: divide each vector by its L2 norm (cosine-ready).
        truncate: cut over-long texts instead of raising `DataError`.
        batch_size: texts per forward pass.
    Returns:
        (N, C) float32 tensor on the CPU, in the order of `texts`.
    """
    if pool not in POOLINGS:
        raise ConfigError(f"unknown pooling {pool!r}; choose one of: {', '.join(POOLINGS)}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    if getattr(model, "model_type", None) != "encoder":
        raise ConfigError(
            f"embeddings need an encoder model, got a {getattr(model, 'model_type', type(model).__name__)} model"
        )
    model.eval()
    rows = tokenize_texts(tokenizer, texts, model.config.max_seq_len, truncate=truncate)
    pad_id = tokenizer.pad_id if tokenizer.pad_id is not None else (model.config.pad_token_id or 0)
    device = next(model.parameters()).device
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))  # long first: batches of similar length
    out = torch.empty(len(rows), model.config.embed_dim)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        input_ids, attention_mask = pad_batch([rows[i] for i in index], pad_id)
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        hidden = model.encode(input_ids, attention_mask)  # (B, T, C)
        vectors = pool_hidden(hidden, attention_mask, pool).float()  # (B, C)
        if normalize:
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=-1)
        out[torch.tensor(index)] = vectors.cpu()
    return out
