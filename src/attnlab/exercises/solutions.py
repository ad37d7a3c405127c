"""Reference solutions of the lab exercises (for instructors), in plain NumPy.

Each function is the answer to one exercise that `attnlab.exercises.check` tests; the checks
compare a learner's function with these. They follow the lab notebooks' conventions:
the last axis holds features, masks are boolean with True = may attend, and shapes
are written in the docstrings.

References: softmax, attention, multi-head layout and sinusoidal encodings follow
Vaswani et al. (2017), "Attention Is All You Need"; layer normalisation Ba et al.
(2016); mean pooling Reimers & Gurevych (2019), "Sentence-BERT"; farthest-point sampling
Eldar et al. (1997) and Qi et al. (2017), "PointNet++"; the previous-token score and the
induction circuit Elhage et al. (2021), "A Mathematical Framework for Transformer Circuits",
and Olsson et al. (2022), "In-context Learning and Induction Heads".

Notation: N examples, B batch, T queries, S keys, C channels, H heads, D head size, V classes,
P points, G sampled points, L layers.
"""

from __future__ import annotations

import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, stable for large inputs.

    Args:
        x: (..., K) scores.
    Returns:
        (..., K) probabilities; each slice along the last axis sums to 1.
    """
    x = np.asarray(x, dtype=np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)  # exp of at most 0: no overflow, same result
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the angle between two vectors: a . b / (|a| |b|).

    Args:
        a: (C,) vector.
        b: (C,) vector.
    Returns:
        A number in [-1, 1].
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def causal_mask(size: int) -> np.ndarray:
    """Boolean (T, T) mask: query i may attend to keys 0..i (True = may attend).

    Args:
        size: T.
    Returns:
        (T, T) bool array, True on and below the diagonal.
    """
    return np.tril(np.ones((size, size), dtype=bool))


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Scaled dot-product attention: softmax(q k^T / sqrt(d)) v.

    Args:
        q: (..., T, D) queries.
        k: (..., S, D) keys.
        v: (..., S, Dv) values.
        mask: boolean, broadcastable to (..., T, S); True = may attend. None = no mask.
    Returns:
        (..., T, Dv) outputs.
    """
    d = q.shape[-1]
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(d)  # (..., T, S)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)  # blocked keys get weight exactly 0
    weights = softmax(scores)  # over the keys
    return weights @ v


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Layer normalisation over the last axis, then a per-feature scale and shift.

    Args:
        x: (..., C) inputs.
        gamma: (C,) scale.
        beta: (C,) shift.
        eps: added to the variance inside the square root.
    Returns:
        (..., C) outputs.
    """
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)  # biased (divide by C), as LayerNorm does
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def multi_head_split(x: np.ndarray, num_heads: int) -> np.ndarray:
    """(B, T, C) -> (B, H, T, D): head h takes channels h*D .. (h+1)*D - 1.

    Args:
        x: (B, T, C) with C divisible by `num_heads`.
        num_heads: H.
    Returns:
        (B, H, T, D) with D = C / H.
    """
    B, T, C = x.shape
    D = C // num_heads
    return x.reshape(B, T, num_heads, D).transpose(0, 2, 1, 3)  # (B, T, H, D) -> (B, H, T, D)


def multi_head_merge(x: np.ndarray) -> np.ndarray:
    """(B, H, T, D) -> (B, T, C): the inverse of `multi_head_split`.

    Args:
        x: (B, H, T, D).
    Returns:
        (B, T, H * D).
    """
    B, H, T, D = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, H * D)  # (B, T, H, D) -> (B, T, C)


def positional_encoding(num_positions: int, dim: int) -> np.ndarray:
    """Sinusoidal encodings: PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(same angle).

    Args:
        num_positions: T (positions 0 .. T-1).
        dim: C (even).
    Returns:
        (T, C) table.
    """
    position = np.arange(num_positions)[:, None]  # (T, 1)
    pair = np.arange(dim // 2)[None, :]  # (1, C/2): i
    angle = position / 10000 ** (2 * pair / dim)  # (T, C/2)
    table = np.zeros((num_positions, dim))
    table[:, 0::2] = np.sin(angle)
    table[:, 1::2] = np.cos(angle)
    return table


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean cross-entropy of integer targets under softmax(logits).

    Args:
        logits: (N, V) unnormalised scores.
        targets: (N,) class indices.
    Returns:
        The mean over the N examples of -log softmax(logits)[n, targets[n]].
    """
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)  # the log-sum-exp trick
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))  # (N, V)
    return float(-log_probs[np.arange(len(targets)), targets].mean())


def mean_pooling(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Average token vectors over the real tokens only (padding excluded).

    Args:
        hidden: (B, T, C) token states.
        attention_mask: (B, T) with 1 at real tokens and 0 at padding.
    Returns:
        (B, C) one vector per sequence.
    """
    m = np.asarray(attention_mask, dtype=np.float64)[..., None]  # (B, T, 1)
    return (hidden * m).sum(axis=1) / m.sum(axis=1)


def farthest_point_sample(points: np.ndarray, num_samples: int) -> np.ndarray:
    """Farthest-point sampling of one cloud: `num_samples` well spread points, as `attnlab.models.point`.

    The first pick is the point farthest from the cloud's centroid (so the answer does not
    depend on the order the points are listed in); each next pick is the point whose
    distance to the nearest pick so far is the largest.

    Args:
        points: (P, 3) xyz.
        num_samples: G, at most P.
    Returns:
        (G,) int64 indices into the P points, in the order they were picked.
    """
    points = np.asarray(points, dtype=np.float64)
    distance = ((points - points.mean(axis=0)) ** 2).sum(axis=1)  # (P,) squared distance to the centroid
    nearest = np.full(len(points), np.inf)  # (P,) squared distance to the nearest pick so far
    chosen = np.empty(num_samples, dtype=np.int64)
    for i in range(num_samples):
        chosen[i] = int(distance.argmax())
        nearest = np.minimum(nearest, ((points - points[chosen[i]]) ** 2).sum(axis=1))
        distance = nearest  # a pick is at distance 0 from itself: never picked twice
    return chosen


def previous_token_scores(patterns: np.ndarray) -> np.ndarray:
    """Every head's previous-token score: its mean attention weight on the token just before the query.

    The statistic of `attnlab.interp.heads.pattern_scores` (Elhage et al. 2021; Olsson et al. 2022):
    the weight from query t on key t - 1, averaged over the batch and the queries t = 1 .. T-1
    (query 0 has no previous token).

    Args:
        patterns: (L, B, H, T, T) attention weights, patterns[l, b, h, t, s] = how much query t
            of head h in layer l attends to key s (`cache.stack("attn.hook_pattern")`).
    Returns:
        (L, H) scores in [0, 1].
    """
    p = np.asarray(patterns, dtype=np.float64)
    previous = np.diagonal(p, offset=-1, axis1=-2, axis2=-1)  # (L, B, H, T-1): p[..., t, t-1] for t = 1 .. T-1
    return previous.mean(axis=(1, 3))


def ablation_prediction() -> set[str]:
    """Which head ablations break in-context copying in lab 8's two-layer attention-only model.

    Copying `[A][B] ... [A] -> [B]` is a circuit of two heads (Elhage et al. 2021; Olsson et al.
    2022): the previous-token head in layer 0 writes "the token before me was A" into every
    position, and the induction head in layer 1 reads it with its keys (K-composition) to find
    the token after the earlier A and copy it. Removing either breaks the circuit; the other
    heads are not part of it.

    Returns:
        The names of the lab's ablations that push the repeated-half loss back up.
    """
    return {"previous_token_head", "induction_heads"}


def fit_power_law(params: np.ndarray, tokens: np.ndarray, losses: np.ndarray) -> tuple[float, ...]:
    """Fit L(N, D) = E + A / N^alpha + B / D^beta to runs by least squares (lab 7).

    The law of Hoffmann et al. (2022), fitted here with `scipy.optimize.curve_fit` on the
    losses themselves (the library's `attnlab.train.scaling_law` minimises Hoffmann et al.'s
    Huber loss on the log loss from a grid of starts; on a laptop-sized grid both predict the
    runs alike). Every parameter is kept non-negative.

    Args:
        params: (R,) non-embedding parameters N of each run.
        tokens: (R,) training tokens D of each run.
        losses: (R,) final validation losses.
    Returns:
        (E, A, B, alpha, beta).
    """
    from scipy.optimize import curve_fit

    n, d, loss = (np.asarray(x, dtype=np.float64) for x in (params, tokens, losses))

    def law(x, E, A, B, alpha, beta):
        return E + A / x[0] ** alpha + B / x[1] ** beta

    best, best_error = None, np.inf
    for p0 in ((1.0, 10.0, 10.0, 0.3, 0.3), (0.5, 100.0, 100.0, 0.5, 0.5)):  # two starts, keep the better fit
        try:
            p, _ = curve_fit(law, (n, d), loss, p0=p0, bounds=(0, np.inf), maxfev=20_000)
        except RuntimeError:  # no convergence from this start
            continue
        error = float(np.sum((law((n, d), *p) - loss) ** 2))
        if error < best_error:
            best, best_error = p, error
    if best is None:
        raise RuntimeError("curve_fit did not converge from any start")
    return tuple(float(v) for v in best)


def predict_loss(
    params: np.ndarray, tokens: np.ndarray, losses: np.ndarray, new_params: float, new_tokens: float
) -> float:
    """Predict the loss of a model of `new_params` parameters trained on `new_tokens` tokens (lab 7).

    Fit the law on the runs (`fit_power_law`) and evaluate it at the new point: an
    extrapolation in N when the model is larger than any run.

    Returns:
        The predicted final validation loss.
    """
    E, A, B, alpha, beta = fit_power_law(params, tokens, losses)
    return float(E + A / new_params**alpha + B / new_tokens**beta)


def gain_slope(sizes: np.ndarray, gains: np.ndarray) -> float:
    """The least-squares slope of the transfer gain against log10 of the target size (lab 7).

    The statistic of `attnlab.train.transfer.gain_trend`: nats of gain per tenfold more target
    data; negative when pretraining helps less as the target data grows (Hernandez et al. 2021).

    Args:
        sizes: (S,) target sizes (characters).
        gains: (S,) transfer gains (scratch minus fine-tuned loss).
    Returns:
        The slope.
    """
    return float(np.polyfit(np.log10(np.asarray(sizes, dtype=np.float64)), np.asarray(gains, dtype=np.float64), 1)[0])


__all__ = [
    "ablation_prediction",
    "attention",
    "causal_mask",
    "cosine_similarity",
    "cross_entropy",
    "farthest_point_sample",
    "fit_power_law",
    "gain_slope",
    "layer_norm",
    "mean_pooling",
    "multi_head_merge",
    "multi_head_split",
    "positional_encoding",
    "predict_loss",
    "previous_token_scores",
    "softmax",
]
