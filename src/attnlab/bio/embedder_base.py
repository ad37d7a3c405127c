"""The interface every sequence embedder follows, and `compute_embeddings` (with caching).

An embedder turns sequences into vectors: per residue (pooling "none": one (L_i, C)
array per sequence, special tokens left out) or one vector per sequence ((N, C), pooled
by "mean", "max" or, for models with a <cls> token, "cls"). The protein language model
embedder, the random-weights control and the one-hot / composition controls
(`attnlab.bio.controls`) all implement `SequenceEmbedder`, so the probing code treats
them alike and `compute_embeddings` caches any of them on disk.

To add an embedder: wrap a PyTorch model with `ModelEmbedder` (a function from token
ids to hidden states, a tokenizer and an identity; `module_fingerprint` hashes the
weights), or subclass `ResidueEmbedder` and give it an `identity` string that changes
whenever its output would (model name, a hash of the weights, the layer, options),
`embedding_dim`, and `embed_residues`.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from attnlab.bio.cache import EmbeddingCache, Embeddings
from attnlab.errors import ConfigError

EMBED_POOLINGS = ("none", "mean", "max", "cls")


class SequenceEmbedder(ABC):
    """Sequences -> embeddings.

    Attributes:
        poolings: the pooling names this embedder supports (a subset of `EMBED_POOLINGS`).
    """

    poolings: ClassVar[tuple[str, ...]] = ("none", "mean", "max")

    @property
    @abstractmethod
    def identity(self) -> str:
        """Stable text naming everything that determines the output (the cache key uses it)."""

    @property
    @abstractmethod
    def embedding_dim(self) -> int:
        """C, the size of each vector."""

    @abstractmethod
    def embed(self, sequences: Sequence[str], pooling: str = "mean") -> Embeddings:
        """Embed `sequences`.

        Args:
            sequences: N sequences.
            pooling: one of `self.poolings`.
        Returns:
            (N, C) float32 for a pooled result; a list of N (L_i, C) float32 arrays for "none".
        """

    def check_pooling(self, pooling: str) -> None:
        """ConfigError unless this embedder supports `pooling`."""
        if pooling not in self.poolings:
            raise ConfigError(
                f"{type(self).__name__} does not support pooling {pooling!r}; choose one of: {', '.join(self.poolings)}"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.identity!r}, dim={self.embedding_dim})"


class ResidueEmbedder(SequenceEmbedder):
    """An embedder that computes per-residue vectors; mean / max pooling happen here in NumPy."""

    @abstractmethod
    def embed_residues(self, sequences: Sequence[str]) -> list[np.ndarray]:
        """One (L_i, C) float32 array per sequence (residues only, no special tokens)."""

    def embed(self, sequences: Sequence[str], pooling: str = "mean") -> Embeddings:
        self.check_pooling(pooling)
        residues = self.embed_residues(sequences)
        if pooling == "none":
            return residues
        return pool_arrays(residues, pooling)


def pool_arrays(residues: Sequence[np.ndarray], pooling: str) -> np.ndarray:
    """Pool per-residue arrays (L_i, C) into (N, C) by "mean" or "max" (NumPy)."""
    if pooling == "mean":
        rows = [r.mean(axis=0) for r in residues]
    elif pooling == "max":
        rows = [r.max(axis=0) for r in residues]
    else:
        raise ConfigError(f"pool_arrays supports 'mean' and 'max', not {pooling!r}")
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)


def compute_embeddings(
    embedder: SequenceEmbedder,
    sequences: Sequence[str],
    pooling: str = "mean",
    cache: EmbeddingCache | bool | None = True,
) -> Embeddings:
    """Embed `sequences`, reading and writing the on-disk cache.

    Args:
        embedder: any `SequenceEmbedder`.
        sequences: N sequences (their order is part of the cache key).
        pooling: "none", "mean", "max" or "cls" (as supported by the embedder).
        cache: an `EmbeddingCache`, True for the default one, False/None for no caching.
    Returns:
        (N, C) float32, or a list of (L_i, C) arrays for pooling "none".
    """
    embedder.check_pooling(pooling)
    sequences = list(sequences)
    if cache is True:
        cache = EmbeddingCache()
    if not cache:
        return embedder.embed(sequences, pooling)
    return cache.get_or_compute(embedder.identity, pooling, sequences, lambda: embedder.embed(sequences, pooling))


def module_fingerprint(module: Any) -> str:
    """A short SHA-256 of a torch module's parameters and buffers (names, shapes, values).

    Put it into an embedder's `identity` so that new weights (another checkpoint, another
    random initialisation) never reuse cached embeddings of the old ones.
    """
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


class ModelEmbedder(SequenceEmbedder):
    """Embeddings from any PyTorch model that maps token ids to per-token hidden states.

    Sequences are tokenized with `<cls>`/`<eos>` (`tokenizer.encode_batch`), sorted by
    length into batches (less padding), run through `forward` without gradients, pooled,
    and returned in the original order. Mean and max pool over the residue positions only
    (not <cls>, <eos> or padding, as ESM does); "cls" takes position 0; "none" returns
    each sequence's residue vectors.

    Args:
        forward: `(input_ids (B, T) int64, attention_mask (B, T) bool) -> hidden (B, T, C)`,
            e.g. `lambda ids, mask: model(ids, attention_mask=mask).hidden_states[layer]`.
        tokenizer: a protein / DNA tokenizer (`attnlab.bio.tokenizers`).
        identity: the model's identity, e.g. f"esm2_t6_8M:layer6:{module_fingerprint(model)}".
        embedding_dim: C.
        batch_size: sequences per forward pass.
        max_length: longest token row (specials included); longer sequences are cut
            (a warning says how many) and then have fewer residue vectors than residues.
        device: where `forward` runs ("cpu", "cuda", ...); inputs are moved there.
        progress: show a tqdm progress bar.
    """

    poolings = ("none", "mean", "max", "cls")

    def __init__(
        self,
        forward: Callable[[Any, Any], Any],
        tokenizer: Any,
        identity: str,
        embedding_dim: int,
        batch_size: int = 16,
        max_length: int | None = None,
        device: str = "cpu",
        progress: bool = True,
    ):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.forward = forward
        self.tokenizer = tokenizer
        self._identity = identity
        self._dim = embedding_dim
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self.progress = progress

    @property
    def identity(self) -> str:
        tok = type(self.tokenizer).__name__
        return f"{self._identity}|{tok}:{json.dumps(self.tokenizer.to_dict(), sort_keys=True)}|max_length={self.max_length}"

    @property
    def embedding_dim(self) -> int:
        return self._dim

    def embed(self, sequences: Sequence[str], pooling: str = "mean") -> Embeddings:
        import torch

        from attnlab.bio.pooling import cls_pool, max_pool, mean_pool
        from attnlab.progress import progress_bar as tqdm  # one updating line in a notebook

        self.check_pooling(pooling)
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        results: list[Any] = [None] * len(sequences)
        starts = range(0, len(order), self.batch_size)
        with torch.no_grad():
            for start in tqdm(starts, desc="embedding", unit="batch", disable=not self.progress or len(starts) < 2):
                idx = order[start : start + self.batch_size]
                batch = self.tokenizer.encode_batch([sequences[i] for i in idx], max_length=self.max_length)
                ids = batch.input_ids.to(self.device)
                hidden = self.forward(ids, batch.attention_mask.to(self.device))  # (B, T, C)
                if hidden.shape[:2] != ids.shape or hidden.shape[-1] != self._dim:
                    raise ConfigError(
                        f"the model returned hidden states of shape {tuple(hidden.shape)}; expected "
                        f"(B, T, C) = ({ids.shape[0]}, {ids.shape[1]}, {self._dim})"
                    )
                residue_mask = batch.residue_mask.to(hidden.device)
                if pooling == "none":
                    rows = [hidden[b][residue_mask[b]] for b in range(len(idx))]  # (L_b, C) each
                else:
                    pooled = {"mean": mean_pool, "max": max_pool}.get(pooling)
                    out = pooled(hidden, residue_mask) if pooled else cls_pool(hidden)  # (B, C)
                    rows = list(out)
                for i, row in zip(idx, rows):
                    results[i] = row.float().cpu().numpy()
        if pooling == "none":
            return results
        return np.stack(results).astype(np.float32) if results else np.zeros((0, self._dim), np.float32)
