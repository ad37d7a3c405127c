"""Analysis of output hidden states: how the token representations change from layer to layer.

For each entry of a model's `hidden_states` (the embeddings, then each block's output, in
Hugging Face's layout) and over the real (non-padding) tokens:
  * norm: mean and standard deviation of the tokens' L2 norms (the residual stream grows
    with depth in pre-norm models; post-norm models keep it near sqrt(C));
  * mean and variance of all activations;
  * mean cosine similarity between the states of different tokens of the same sequence
    (near 1 means the tokens have become alike: "anisotropy" (Ethayarajh 2019) or, in the
    extreme, rank collapse (Dong et al. 2021));
  * effective rank of the (tokens x channels) matrix, Roy & Vetterli (2007):
        p_i = s_i / sum_j s_j  (s the singular values),  erank = exp(-sum_i p_i log p_i),
    which is 1 for rank-1 states and k for k orthogonal directions of equal size.
Everything is computed in float64 NumPy from tensors or arrays; figures are in
`attnlab.viz.hidden_states`.

Notation: L layers, B batch, T tokens, C channels, N real tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from attnlab.utils import cosine_similarity_matrix as _cosine_matrix


def _np(x: Any) -> np.ndarray:
    try:
        return x.detach().to("cpu").double().numpy()
    except AttributeError:
        return np.asarray(x, dtype=np.float64)


def _mask(hidden: np.ndarray, attention_mask: Any | None) -> np.ndarray:
    """(B, T) boolean mask of real tokens (all True when no mask is given)."""
    B, T = hidden.shape[:2]
    if attention_mask is None:
        return np.ones((B, T), dtype=bool)
    mask = _np(attention_mask).astype(bool)
    if mask.shape != (B, T):
        raise ValueError(f"attention_mask has shape {mask.shape}, but the hidden states are (B, T) = {(B, T)}")
    return mask


def _as_3d(hidden: Any) -> np.ndarray:
    h = _np(hidden)
    if h.ndim == 2:  # one sequence (T, C)
        h = h[None]
    if h.ndim != 3:
        raise ValueError(f"hidden states must be (B, T, C) or (T, C), got shape {h.shape}")
    return h


def token_norms(hidden: Any, attention_mask: Any | None = None) -> np.ndarray:
    """L2 norm of every real token's state.

    Args:
        hidden: (B, T, C) or (T, C) states.
        attention_mask: (B, T) 1 for real tokens, 0 for padding; None = all real.
    Returns:
        (N,) norms of the N real tokens.
    """
    h = _as_3d(hidden)
    return np.linalg.norm(h[_mask(h, attention_mask)], axis=-1)


def cosine_similarity_matrix(states: Any, eps: float = 1e-12) -> np.ndarray:
    """(T, T) cosine similarities between the rows of `states` (T, C); zero vectors give 0."""
    s = _np(states)
    if s.ndim != 2:
        raise ValueError(f"states must be (T, C), got shape {s.shape}")
    return _cosine_matrix(s, eps=eps)


def mean_pairwise_cosine(hidden: Any, attention_mask: Any | None = None) -> float:
    """Mean cosine similarity over pairs of different real tokens of the same sequence.

    Args:
        hidden: (B, T, C) or (T, C) states.
        attention_mask: (B, T) real-token mask; None = all real.
    Returns:
        The mean over all such pairs of all sequences (NaN if no sequence has 2 tokens).
    """
    h = _as_3d(hidden)
    mask = _mask(h, attention_mask)
    total, pairs = 0.0, 0
    for b in range(h.shape[0]):
        states = h[b][mask[b]]
        n = len(states)
        if n < 2:
            continue
        sim = cosine_similarity_matrix(states)
        total += float(sim.sum() - np.trace(sim))  # off-diagonal entries: ordered pairs i != j
        pairs += n * (n - 1)
    return total / pairs if pairs else float("nan")


def effective_rank(states: Any, center: bool = False) -> float:
    """Effective rank (Roy & Vetterli 2007) of an (N, C) matrix of token states.

    Args:
        states: (N, C) matrix (or (B, T, C), flattened to rows).
        center: subtract the mean state first (measures the spread around the mean direction).
    Returns:
        exp(entropy of the normalised singular values): 1.0 for rank-1 states, k for k
        orthogonal directions of equal strength, 0.0 for an all-zero matrix.
    """
    s = _np(states)
    s = s.reshape(-1, s.shape[-1])
    if center:
        s = s - s.mean(axis=0, keepdims=True)
    singular = np.linalg.svd(s, compute_uv=False)
    total = singular.sum()
    if total <= 0:
        return 0.0
    p = singular / total
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


@dataclass
class HiddenStateStats:
    """Per-layer statistics of hidden states; every array has one entry per hidden state (L + 1)."""

    norm_mean: np.ndarray  # mean L2 norm of the token states
    norm_std: np.ndarray  # standard deviation of those norms
    mean: np.ndarray  # mean of all activations
    variance: np.ndarray  # variance of all activations
    mean_cosine: np.ndarray  # mean cosine similarity between different tokens of a sequence
    effective_rank: np.ndarray  # Roy & Vetterli effective rank of the (N, C) states
    num_tokens: int  # N real tokens the statistics are over
    width: int  # C

    @property
    def num_layers(self) -> int:
        """L: the number of blocks (entries - 1, the first being the embeddings)."""
        return len(self.norm_mean) - 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists of floats)."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}

    def table(self) -> str:
        """A plain-text table, one row per hidden state (0 = embeddings)."""
        lines = ["layer   norm (mean ± std)      mean   variance   cos(tokens)   eff. rank"]
        for i in range(len(self.norm_mean)):
            lines.append(
                f"{i:>5}   {self.norm_mean[i]:>8.3f} ± {self.norm_std[i]:<8.3f} {self.mean[i]:>8.4f} {self.variance[i]:>10.4f}"
                f"   {self.mean_cosine[i]:>11.4f}   {self.effective_rank[i]:>9.2f}"
            )
        return "\n".join(lines)


def hidden_state_stats(
    hidden_states: Sequence[Any], attention_mask: Any | None = None, *, center_rank: bool = False
) -> HiddenStateStats:
    """Norm, mean, variance, token cosine similarity and effective rank of each hidden state.

    Args:
        hidden_states: L + 1 tensors/arrays (B, T, C) (a model's `output.hidden_states`).
        attention_mask: (B, T) 1 for real tokens, 0 for padding; None = all real.
        center_rank: compute the effective rank of mean-centred states.
    Returns:
        `HiddenStateStats` with one entry per hidden state.
    """
    if len(hidden_states) == 0:
        raise ValueError("no hidden states given; run the model with output_hidden_states=True")
    rows: dict[str, list[float]] = {
        k: [] for k in ("norm_mean", "norm_std", "mean", "variance", "mean_cosine", "effective_rank")
    }
    num_tokens = width = 0
    for hidden in hidden_states:
        h = _as_3d(hidden)
        mask = _mask(h, attention_mask)
        real = h[mask]  # (N, C)
        norms = np.linalg.norm(real, axis=-1)
        rows["norm_mean"].append(float(norms.mean()))
        rows["norm_std"].append(float(norms.std()))
        rows["mean"].append(float(real.mean()))
        rows["variance"].append(float(real.var()))
        rows["mean_cosine"].append(mean_pairwise_cosine(h, mask))
        rows["effective_rank"].append(effective_rank(real, center=center_rank))
        num_tokens, width = real.shape
    return HiddenStateStats(**{k: np.asarray(v) for k, v in rows.items()}, num_tokens=int(num_tokens), width=int(width))


def collect_hidden_states(model: Any, input_ids: Any, attention_mask: Any | None = None) -> tuple[Any, ...]:
    """Run `model` (attnlab GPT or Encoder) once and return its L + 1 hidden states.

    Args:
        model: a model whose forward accepts `output_hidden_states=True`.
        input_ids: (B, T) token ids (a tensor or nested list).
        attention_mask: (B, T) real-token mask, or None.
    """
    import torch

    device = next(model.parameters()).device
    ids = torch.as_tensor(input_ids, dtype=torch.long, device=device)
    if ids.dim() == 1:
        ids = ids[None]
    kwargs: dict[str, Any] = {"output_hidden_states": True}
    if attention_mask is not None:
        kwargs["attention_mask"] = torch.as_tensor(attention_mask, device=device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(ids, **kwargs)
    model.train(was_training)
    return out.hidden_states
