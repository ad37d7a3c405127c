"""Additive attention (Bahdanau, Cho and Bengio 2015, eq. 6 and appendix A.1.2) in NumPy, forward and backward.

One decoder step: the previous decoder state s (the query) scores every encoder annotation
h_j with a one-hidden-layer MLP, the scores are soft-maxed over the real source positions,
and the context is the weighted sum of the annotations:

    e_j     = v_a^T tanh(W_a^T s + U_a^T h_j)      (B, S)
    alpha_j = exp(e_j) / sum_k exp(e_k)             (B, S), 0 on padding
    c       = sum_j alpha_j h_j                     (B, He)

The backward pass is written out by hand (no autograd); `tests/scratch/test_additive_attention.py`
checks it against finite differences in float64 and the forward against the PyTorch module
`attnlab.models.rnn_seq2seq.AdditiveAttention` (whose `nn.Linear` weights are these matrices
transposed: W_a here = `W_a.weight.T`, U_a = `U_a.weight.T`, v_a = `v_a.weight[0]`).

Notation: B batch, S source length, Hd decoder state size, He annotation size, A score width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AdditiveAttentionCache", "additive_attention_forward", "additive_attention_backward"]


@dataclass
class AdditiveAttentionCache:
    """What the backward pass needs from the forward pass."""

    query: np.ndarray  # (B, Hd) s
    memory: np.ndarray  # (B, S, He) h_j
    W_a: np.ndarray  # (Hd, A)
    U_a: np.ndarray  # (He, A)
    v_a: np.ndarray  # (A,)
    z: np.ndarray  # (B, S, A) tanh(W_a^T s + U_a^T h_j)
    alpha: np.ndarray  # (B, S) the attention weights


def additive_attention_forward(
    query: np.ndarray,
    memory: np.ndarray,
    mask: np.ndarray | None,
    W_a: np.ndarray,
    U_a: np.ndarray,
    v_a: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, AdditiveAttentionCache]:
    """One additive attention step.

    Args:
        query: (B, Hd) the decoder state s_{t-1}.
        memory: (B, S, He) the encoder annotations h_j.
        mask: (B, S) bool, True on real source positions (at least one per row); None = all real.
        W_a: (Hd, A), U_a: (He, A), v_a: (A,) the score's parameters.
    Returns:
        (context (B, He), weights alpha (B, S), cache for the backward pass).
    """
    z = np.tanh((query @ W_a)[:, None, :] + memory @ U_a)  # (B, S, A) tanh(W_a s + U_a h_j)
    e = z @ v_a  # (B, S) e_j = v_a^T z_j
    if mask is not None:
        e = np.where(mask, e, -np.inf)  # padding gets no weight
    e = e - e.max(axis=-1, keepdims=True)  # stable softmax
    w = np.exp(e)
    alpha = w / w.sum(axis=-1, keepdims=True)  # (B, S)
    context = np.einsum("bs,bsh->bh", alpha, memory)  # (B, He) c = sum_j alpha_j h_j
    return context, alpha, AdditiveAttentionCache(query, memory, W_a, U_a, v_a, z, alpha)


def additive_attention_backward(
    d_context: np.ndarray, cache: AdditiveAttentionCache, d_alpha: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Gradients of a loss through one additive attention step.

    Args:
        d_context: (B, He) dLoss/dc.
        cache: from `additive_attention_forward`.
        d_alpha: (B, S) dLoss/dalpha where the weights feed the loss directly too (default none).
    Returns:
        {"query": (B, Hd), "memory": (B, S, He), "W_a": (Hd, A), "U_a": (He, A), "v_a": (A,)}.
    """
    q, m, alpha, z = cache.query, cache.memory, cache.alpha, cache.z
    da = np.einsum("bh,bsh->bs", d_context, m)  # (B, S) dc/dalpha_j = h_j
    if d_alpha is not None:
        da = da + d_alpha
    d_memory = alpha[:, :, None] * d_context[:, None, :]  # (B, S, He) through c = sum_j alpha_j h_j
    de = alpha * (da - (alpha * da).sum(axis=-1, keepdims=True))  # (B, S) softmax backward (0 on padding)
    d_v = np.einsum("bs,bsa->a", de, z)  # (A,) e_j = v_a^T z_j
    du = de[:, :, None] * cache.v_a * (1.0 - z**2)  # (B, S, A) through tanh
    dq_proj = du.sum(axis=1)  # (B, A) W_a s is shared by every source position
    d_W = q.T @ dq_proj  # (Hd, A)
    d_query = dq_proj @ cache.W_a.T  # (B, Hd)
    d_U = np.einsum("bsh,bsa->ha", m, du)  # (He, A)
    d_memory = d_memory + du @ cache.U_a.T  # (B, S, He) h_j is also a score input
    return {"query": d_query, "memory": d_memory, "W_a": d_W, "U_a": d_U, "v_a": d_v}
