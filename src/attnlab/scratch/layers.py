"""NumPy layers with hand-written backward passes: Linear, Embedding, LayerNorm, RMSNorm,
activations (ReLU, GELU, Tanh, SiLU), softmax, dropout, feed-forward (and LLaMA's SwiGLU)
and cross-entropy.

How to read a backward pass
---------------------------
Every layer computes y = f(x; params) in `forward` and keeps what it needs. `backward`
receives dy = dL/dy (same shape as y) and applies the chain rule:
    dL/dx      = (dy/dx)^T dy        returned to the layer below,
    dL/dparams = (dy/dparams)^T dy   added to `self.grads`.
The docstring of each layer writes out those two formulas; the code follows them
line by line. Shapes: x is (..., C) -- any leading dimensions (B, T) -- and N is the
number of rows once they are flattened.

References: layer normalisation (Ba et al., 2016); RMSNorm (Zhang & Sennrich, 2019);
GELU (Hendrycks & Gimpel, 2016) and its tanh approximation (used by GPT-2); SiLU
(Elfwing et al., 2018); dropout (Srivastava et al., 2014); the feed-forward network of
Vaswani et al. (2017), sec. 3.3, and its gated SwiGLU form (Shazeer, 2020; LLaMA). Each
layer computes the same function as its PyTorch counterpart (`nn.Linear`, `nn.Embedding`,
`nn.LayerNorm`, `attnlab.nn.layers.RMSNorm`, `F.gelu`, `F.silu`, `nn.Dropout`,
`F.cross_entropy`, `attnlab.nn.layers.FeedForward` / `SwiGLU`), which tests/scratch checks.

Notation: N rows (B * T), C input features, F output (or hidden) features, V vocabulary.
"""

from __future__ import annotations

import math

import numpy as np

from attnlab.scratch.module import Module, as_float_dtype

__all__ = [
    "Linear",
    "Embedding",
    "LayerNorm",
    "RMSNorm",
    "ReLU",
    "GELU",
    "Tanh",
    "SiLU",
    "Dropout",
    "FeedForward",
    "SwiGLU",
    "CrossEntropyLoss",
    "softmax",
    "softmax_backward",
    "log_softmax",
    "erf",
    "make_activation",
    "IGNORE_INDEX",
]

IGNORE_INDEX = -100  # target value that is not scored (padding), as in PyTorch


# ---------------------------------------------------------------------------
# erf: SciPy's (a core dependency; a compiled ufunc, exact in float32 and float64)
# ---------------------------------------------------------------------------


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise, in the dtype of `x` (SciPy's `scipy.special.erf`)."""
    from scipy.special import erf as scipy_erf

    return scipy_erf(x)


# ---------------------------------------------------------------------------
# Softmax (a function, used by attention and the loss)
# ---------------------------------------------------------------------------


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x) along `axis`.

    Subtracting the max changes nothing mathematically and keeps exp from overflowing.
    A slice that is entirely -inf (every key blocked) gives zeros instead of NaN.
    """
    m = np.max(x, axis=axis, keepdims=True)
    m[~np.isfinite(m)] = 0.0  # an all -inf row: exp(-inf - 0) = 0 everywhere
    e = np.exp(x - m)
    s = np.sum(e, axis=axis, keepdims=True)
    s[s == 0] = 1.0  # all-blocked rows stay 0 rather than 0/0
    e /= s
    return e


def softmax_backward(y: np.ndarray, dy: np.ndarray, axis: int = -1) -> np.ndarray:
    """Backward of y = softmax(x): dx_i = y_i (dy_i - sum_j dy_j y_j).

    From dy_j/dx_i = y_j (delta_ij - y_i): the Jacobian is diag(y) - y y^T, and
    (diag(y) - y y^T) dy = y * dy - y (y . dy).
    """
    return y * (dy - np.sum(dy * y, axis=axis, keepdims=True))


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log softmax(x) = x - max - log sum exp(x - max), computed stably."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


# ---------------------------------------------------------------------------
# Linear and Embedding
# ---------------------------------------------------------------------------


class Linear(Module):
    """y = x W^T + b, with W of shape (F, C) as in `torch.nn.Linear`.

    Backward, with x and dy flattened to (N, C) and (N, F):
        dx = dy W            (N, C)
        dW = dy^T x          (F, C)   (sums over the N rows)
        db = sum_n dy_n      (F,)

    Args:
        in_features: C.
        out_features: F.
        bias: learn an additive bias.
        dtype: np.float32 (default) or np.float64.
        rng: generator for the initialisation; None = seed 0.
        init_std: std of the normal initialisation of W; None = PyTorch's default
            U(-1/sqrt(C), 1/sqrt(C)) for both W and b.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        dtype=np.float32,
        rng: np.random.Generator | None = None,
        init_std: float | None = None,
    ):
        super().__init__()
        dtype = as_float_dtype(dtype)
        rng = rng if rng is not None else np.random.default_rng(0)
        if init_std is None:
            bound = 1.0 / math.sqrt(in_features)
            self.params["weight"] = rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype)
            if bias:
                self.params["bias"] = rng.uniform(-bound, bound, out_features).astype(dtype)
        else:
            self.params["weight"] = (rng.standard_normal((out_features, in_features)) * init_std).astype(dtype)
            if bias:
                self.params["bias"] = np.zeros(out_features, dtype=dtype)
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(..., C) -> (..., F)."""
        self._x = x
        w = self.params["weight"]
        x2 = x.reshape(-1, x.shape[-1])  # (N, C): one big matrix product instead of one per batch row
        y = x2 @ w.T  # (N, F)
        if "bias" in self.params:
            y += self.params["bias"]
        return y.reshape(*x.shape[:-1], w.shape[0])

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """dy (..., F) -> dx (..., C); adds dW and db to `grads`."""
        x = self._x
        w = self.params["weight"]
        x2 = x.reshape(-1, x.shape[-1])  # (N, C)
        dy2 = dy.reshape(-1, dy.shape[-1])  # (N, F)
        self._accumulate("weight", dy2.T @ x2)  # (F, C)
        if "bias" in self.params:
            self._accumulate("bias", dy2.sum(axis=0))  # (F,)
        dx = dy2 @ w  # (N, C)
        self._x = None  # free the cache
        return dx.reshape(x.shape)


def _scatter_add_rows(index: np.ndarray, rows: np.ndarray, num_rows: int) -> np.ndarray:
    """out[i] = sum of rows[n] over every n with index[n] == i; out has `num_rows` rows.

    This is the gradient of a table lookup. `np.add.at(out, index, rows)` says the same
    thing and is clearer but slower; here each table row's sum is a slice of the rows
    sorted by index (`np.add.reduceat`), or a one-hot matrix product when the table is small.
    """
    N, C = rows.shape
    if num_rows * N <= 4_000_000:  # small vocabulary: one-hot (V, N) @ (N, C) is one fast matmul
        one_hot = np.zeros((num_rows, N), dtype=rows.dtype)
        one_hot[index, np.arange(N)] = 1.0
        return one_hot @ rows
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    starts = np.flatnonzero(np.r_[True, sorted_index[1:] != sorted_index[:-1]])  # first row of each id
    out = np.zeros((num_rows, C), dtype=rows.dtype)
    out[sorted_index[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return out


class Embedding(Module):
    """A lookup table: y[..., :] = W[ids[...], :], W of shape (V, C) (`torch.nn.Embedding`).

    Backward: each row of dW is the sum of dy over the positions that looked it up,
        dW[v] = sum_{n: ids_n = v} dy_n,
    and rows never looked up get zero gradient. The ids are integers: no dx.

    Args:
        num_embeddings: V.
        embedding_dim: C.
        dtype: np.float32 or np.float64.
        rng: generator for the N(0, init_std) initialisation.
        init_std: std of the initialisation (PyTorch's default is 1.0).
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        *,
        dtype=np.float32,
        rng: np.random.Generator | None = None,
        init_std: float = 1.0,
    ):
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng(0)
        self.params["weight"] = (rng.standard_normal((num_embeddings, embedding_dim)) * init_std).astype(
            as_float_dtype(dtype)
        )
        self._ids: np.ndarray | None = None

    def forward(self, ids: np.ndarray) -> np.ndarray:
        """Integer ids (...) -> vectors (..., C)."""
        ids = np.asarray(ids)
        V = self.params["weight"].shape[0]
        if ids.size and (ids.min() < 0 or ids.max() >= V):
            raise IndexError(f"token ids must be in [0, {V}), got values in [{ids.min()}, {ids.max()}]")
        self._ids = ids
        return self.params["weight"][ids]

    def backward(self, dy: np.ndarray) -> None:
        """dy (..., C); adds dW (V, C) to `grads`. Returns None (ids have no gradient)."""
        W = self.params["weight"]
        ids = self._ids.reshape(-1)  # (N,)
        self._accumulate("weight", _scatter_add_rows(ids, dy.reshape(-1, W.shape[1]), W.shape[0]))
        self._ids = None
        return None


# ---------------------------------------------------------------------------
# LayerNorm
# ---------------------------------------------------------------------------


class LayerNorm(Module):
    """Layer normalisation over the last dimension (`torch.nn.LayerNorm`, biased variance).

    Forward, for each row x of C features:
        mu = mean(x),  sigma = sqrt(mean((x - mu)^2) + eps),
        xhat = (x - mu) / sigma,   y = xhat * gamma + beta.
    Backward, with g = dy * gamma (the gradient reaching xhat):
        dgamma = sum_rows dy * xhat,   dbeta = sum_rows dy,
        dx = (g - mean(g) - xhat * mean(g * xhat)) / sigma
    The two means remove the parts of g that normalisation cancels: a shift of every
    feature (mean) and a rescaling of xhat (projection on xhat).

    Args:
        dim: C.
        eps: added to the variance.
        bias: learn beta (nanoGPT drops it).
        dtype: np.float32 or np.float64.
    """

    def __init__(self, dim: int, eps: float = 1e-5, bias: bool = True, *, dtype=np.float32):
        super().__init__()
        dtype = as_float_dtype(dtype)
        self.eps = eps
        self.params["weight"] = np.ones(dim, dtype=dtype)
        if bias:
            self.params["bias"] = np.zeros(dim, dtype=dtype)
        self._xhat: np.ndarray | None = None
        self._inv_sigma: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(..., C) -> (..., C)."""
        mu = x.mean(axis=-1, keepdims=True)  # (..., 1)
        xc = x - mu
        var = np.mean(xc * xc, axis=-1, keepdims=True)  # (..., 1), biased like torch
        inv_sigma = 1.0 / np.sqrt(var + self.eps)  # (..., 1)
        xhat = xc
        xhat *= inv_sigma  # in place: xc is not needed any more
        self._xhat, self._inv_sigma = xhat, inv_sigma
        y = xhat * self.params["weight"]
        if "bias" in self.params:
            y += self.params["bias"]
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """dy (..., C) -> dx (..., C); adds dgamma, dbeta to `grads`."""
        xhat, inv_sigma = self._xhat, self._inv_sigma
        C = xhat.shape[-1]
        dy2, xhat2 = dy.reshape(-1, C), xhat.reshape(-1, C)  # (N, C)
        self._accumulate("weight", np.einsum("nc,nc->c", dy2, xhat2))  # sum over rows of dy * xhat
        if "bias" in self.params:
            self._accumulate("bias", dy2.sum(axis=0))
        g = dy * self.params["weight"]  # (..., C) gradient w.r.t. xhat
        dx = g - g.mean(axis=-1, keepdims=True)
        dx -= xhat * np.mean(g * xhat, axis=-1, keepdims=True)
        dx *= inv_sigma
        self._xhat = self._inv_sigma = None
        return dx


class RMSNorm(Module):
    """Root-mean-square normalisation over the last dimension (`attnlab.nn.layers.RMSNorm`, LLaMA).

    Forward, for each row x of C features (no centring, no bias):
        r = sqrt(mean(x^2) + eps),   xhat = x / r,   y = xhat * gamma.
    Backward, with g = dy * gamma (the gradient reaching xhat):
        dgamma = sum_rows dy * xhat,
        dx = (g - xhat * mean(g * xhat)) / r
    LayerNorm's backward without the mean(g) term: only the rescaling of x is cancelled.

    Args:
        dim: C.
        eps: added to the mean square.
        dtype: np.float32 or np.float64.
    """

    def __init__(self, dim: int, eps: float = 1e-5, *, dtype=np.float32):
        super().__init__()
        self.eps = eps
        self.params["weight"] = np.ones(dim, dtype=as_float_dtype(dtype))
        self._xhat: np.ndarray | None = None
        self._inv_rms: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(..., C) -> (..., C)."""
        inv_rms = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps)  # (..., 1)
        xhat = x * inv_rms
        self._xhat, self._inv_rms = xhat, inv_rms
        return xhat * self.params["weight"]

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """dy (..., C) -> dx (..., C); adds dgamma to `grads`."""
        xhat, inv_rms = self._xhat, self._inv_rms
        C = xhat.shape[-1]
        self._accumulate("weight", np.einsum("nc,nc->c", dy.reshape(-1, C), xhat.reshape(-1, C)))
        g = dy * self.params["weight"]  # (..., C) gradient w.r.t. xhat
        dx = g - xhat * np.mean(g * xhat, axis=-1, keepdims=True)
        dx *= inv_rms
        self._xhat = self._inv_rms = None
        return dx


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------


class ReLU(Module):
    """y = max(x, 0).  Backward: dx = dy where x > 0, else 0."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._positive = x > 0
        return np.maximum(x, 0)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dx = dy * self._positive
        self._positive = None
        return dx


class Tanh(Module):
    """y = tanh(x).  Backward: dx = dy (1 - y^2)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = np.tanh(x)
        return self._y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dx = dy * (1.0 - self._y * self._y)
        self._y = None
        return dx


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class GELU(Module):
    """Gaussian error linear unit (`F.gelu`), exact or with the tanh approximation.

    Exact ("none"):  y = x Phi(x),  Phi(x) = (1 + erf(x / sqrt 2)) / 2 (standard normal cdf).
        dy/dx = Phi(x) + x phi(x),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi) (its density).
    Tanh ("tanh", GPT-2): y = x (1 + tanh u) / 2,  u = sqrt(2/pi) (x + 0.044715 x^3).
        dy/dx = (1 + tanh u) / 2 + x (1 - tanh^2 u) / 2 * sqrt(2/pi) (1 + 3 * 0.044715 x^2).

    Args:
        approximate: "none" (exact, erf) or "tanh".
    """

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        if self.approximate == "tanh":
            inner = x * x
            inner *= 0.044715
            inner += 1.0
            inner *= x
            inner *= _SQRT_2_OVER_PI  # u = sqrt(2/pi) (x + 0.044715 x^3)
            half_one_plus_t = np.tanh(inner, out=inner)
            half_one_plus_t += 1.0
            half_one_plus_t *= 0.5  # (1 + tanh u) / 2
            self._cache = half_one_plus_t
        else:
            cdf = erf(x * _INV_SQRT_2)
            cdf += 1.0
            cdf *= 0.5  # Phi(x)
            self._cache = cdf
        return x * self._cache

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x, c = self._x, self._cache
        if self.approximate == "tanh":
            # 1 - tanh^2 u = 4 c (1 - c) with c = (1 + tanh u) / 2
            x2 = x * x
            du = x2 * (3 * 0.044715)
            du += 1.0
            du *= _SQRT_2_OVER_PI  # du/dx
            grad = 2.0 * c * (1.0 - c)  # (1 - tanh^2 u) / 2
            grad *= du
            grad *= x
            grad += c
        else:
            pdf = np.exp(-0.5 * (x * x))
            pdf *= _INV_SQRT_2PI  # phi(x)
            grad = pdf
            grad *= x
            grad += c  # Phi(x) + x phi(x)
        grad *= dy
        self._x = self._cache = None
        return grad


class SiLU(Module):
    """y = x sigmoid(x) (`F.silu`, "swish").  Backward: dx = dy s (1 + x (1 - s)), s = sigmoid(x)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        s = 0.5 * (1.0 + np.tanh(0.5 * x))  # sigmoid(x), without overflow for large |x|
        self._x, self._s = x, s.astype(x.dtype, copy=False)
        return x * self._s

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x, s = self._x, self._s
        grad = 1.0 - s
        grad *= x
        grad += 1.0
        grad *= s  # d(x s)/dx = s + x s (1 - s)
        grad *= dy
        self._x = self._s = None
        return grad


def make_activation(name: str) -> Module:
    """The activation layer called `name`: relu, gelu (exact), gelu_tanh, tanh or silu."""
    if name == "relu":
        return ReLU()
    if name == "gelu":
        return GELU("none")
    if name == "gelu_tanh":
        return GELU("tanh")
    if name == "tanh":
        return Tanh()
    if name == "silu":
        return SiLU()
    raise ValueError(f"unknown activation {name!r}; choose one of: relu, gelu, gelu_tanh, tanh, silu")


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------


class Dropout(Module):
    """Inverted dropout (`nn.Dropout`): in training, y = x * m / (1 - p), m_i ~ Bernoulli(1 - p).

    Backward: dx = dy * m / (1 - p) (the same mask). In eval mode, or with p = 0, y = x.

    Args:
        p: probability of zeroing an element.
        rng: a seeded `np.random.Generator` (shared by the model's dropout layers).
    """

    def __init__(self, p: float = 0.0, rng: np.random.Generator | None = None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self._scale_mask: np.ndarray | None = None

    @property
    def active(self) -> bool:
        return self.training and self.p > 0.0

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.active:
            self._scale_mask = None
            return x
        keep = self.rng.random(x.shape, dtype=x.dtype) >= self.p
        self._scale_mask = keep * x.dtype.type(1.0 / (1.0 - self.p))  # 0 or 1/(1-p)
        return x * self._scale_mask

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self._scale_mask is None:
            return dy
        dx = dy * self._scale_mask
        self._scale_mask = None
        return dx


# ---------------------------------------------------------------------------
# Feed-forward
# ---------------------------------------------------------------------------


class FeedForward(Module):
    """Position-wise feed-forward network: y = dropout(fc2(act(fc1(x)))).

    Same parameter names as `attnlab.nn.layers.FeedForward` (fc1, fc2). Backward runs
    the same layers in reverse order.

    Args:
        embed_dim: C.
        hidden_dim: F (commonly 4 C).
        activation: relu, gelu, gelu_tanh or tanh.
        dropout: dropout on the output (the residual branch).
        bias: biases in fc1 and fc2.
        dtype: np.float32 or np.float64.
        rng: generator for the initialisation.
        init_std: N(0, init_std) weights (None = PyTorch's default init).
        out_init_std: std for fc2 (GPT-2 scales the residual projections down).
        dropout_rng: generator for the dropout masks.
    """

    def __init__(
        self,
        embed_dim: int,
        hidden_dim: int,
        activation: str = "gelu",
        dropout: float = 0.0,
        bias: bool = True,
        *,
        dtype=np.float32,
        rng: np.random.Generator | None = None,
        init_std: float | None = None,
        out_init_std: float | None = None,
        dropout_rng: np.random.Generator | None = None,
    ):
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng(0)
        self.fc1 = Linear(embed_dim, hidden_dim, bias, dtype=dtype, rng=rng, init_std=init_std)
        self.act = make_activation(activation)
        self.fc2 = Linear(
            hidden_dim,
            embed_dim,
            bias,
            dtype=dtype,
            rng=rng,
            init_std=out_init_std if out_init_std is not None else init_std,
        )
        self.dropout = Dropout(dropout, dropout_rng)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(B, T, C) -> (B, T, C)."""
        return self.dropout(self.fc2(self.act(self.fc1(x))))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """dy (B, T, C) -> dx (B, T, C)."""
        return self.fc1.backward(self.act.backward(self.fc2.backward(self.dropout.backward(dy))))


class SwiGLU(Module):
    """LLaMA's gated feed-forward network: y = dropout(w_down(act(w_gate(x)) * w_up(x))), act = SiLU.

    Same parameter names as `attnlab.nn.layers.SwiGLU` (w_gate, w_up, w_down). With
    a = act(w_gate(x)) and u = w_up(x), h = a * u (F features); backward:
        dh = w_down'^T dy,   da = dh * u,   du = dh * a,
        dx = w_gate'^T act'^T da + w_up'^T du   (x feeds both branches: the gradients add).

    Args:
        embed_dim: C.
        hidden_dim: F.
        activation: the gate's non-linearity (silu; gelu gives GeGLU).
        dropout: dropout on the output (the residual branch).
        bias: biases in the three linear layers (LLaMA has none).
        dtype: np.float32 or np.float64.
        rng: generator for the initialisation.
        init_std: N(0, init_std) weights (None = PyTorch's default init).
        out_init_std: std for w_down (GPT-2 scales the residual projections down).
        dropout_rng: generator for the dropout masks.
    """

    def __init__(
        self,
        embed_dim: int,
        hidden_dim: int,
        activation: str = "silu",
        dropout: float = 0.0,
        bias: bool = False,
        *,
        dtype=np.float32,
        rng: np.random.Generator | None = None,
        init_std: float | None = None,
        out_init_std: float | None = None,
        dropout_rng: np.random.Generator | None = None,
    ):
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng(0)
        self.w_gate = Linear(embed_dim, hidden_dim, bias, dtype=dtype, rng=rng, init_std=init_std)
        self.w_up = Linear(embed_dim, hidden_dim, bias, dtype=dtype, rng=rng, init_std=init_std)
        self.w_down = Linear(
            hidden_dim,
            embed_dim,
            bias,
            dtype=dtype,
            rng=rng,
            init_std=out_init_std if out_init_std is not None else init_std,
        )
        self.act = make_activation(activation)
        self.dropout = Dropout(dropout, dropout_rng)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(B, T, C) -> (B, T, C)."""
        a = self.act(self.w_gate(x))  # (B, T, F) gate
        u = self.w_up(x)  # (B, T, F) value
        self._a, self._u = a, u
        return self.dropout(self.w_down(a * u))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """dy (B, T, C) -> dx (B, T, C)."""
        dh = self.w_down.backward(self.dropout.backward(dy))  # (B, T, F)
        a, u = self._a, self._u
        dx = self.w_gate.backward(self.act.backward(dh * u))
        dx += self.w_up.backward(dh * a)
        self._a = self._u = None
        return dx


# ---------------------------------------------------------------------------
# Loss
# ---------------------------------------------------------------------------


class CrossEntropyLoss(Module):
    """Mean cross-entropy of logits against integer targets (`F.cross_entropy`).

    For row n with logits z_n (V,) and target t_n:
        loss_n = logsumexp(z_n) - z_n[t_n] = -log softmax(z_n)[t_n].
    The loss is the mean over the M rows whose target is not `ignore_index`
    (NaN when there are none, as in PyTorch). Backward:
        dz_n = (softmax(z_n) - onehot(t_n)) / M   for scored rows,  0 for ignored rows.

    Args:
        ignore_index: target value that is not scored (-100).
    """

    def __init__(self, ignore_index: int = IGNORE_INDEX):
        super().__init__()
        self.ignore_index = ignore_index

    def forward(self, logits: np.ndarray, targets: np.ndarray) -> float:
        """logits (..., V), targets (...) -> scalar loss."""
        V = logits.shape[-1]
        z = logits.reshape(-1, V)  # (N, V)
        t = np.asarray(targets).reshape(-1)  # (N,)
        if t.shape[0] != z.shape[0]:
            raise ValueError(f"targets of shape {np.shape(targets)} do not match logits of shape {logits.shape}")
        scored = t != self.ignore_index  # (N,)
        if np.any(scored & ((t < 0) | (t >= V))):
            raise IndexError(f"targets must be in [0, {V}) or {self.ignore_index}")
        t_safe = np.where(scored, t, 0)
        rows = np.arange(z.shape[0])
        m = z.max(axis=-1, keepdims=True)  # (N, 1)
        probs = np.exp(z - m)  # (N, V), unnormalised for now
        total = probs.sum(axis=-1, keepdims=True)  # (N, 1)
        # log p_t = z_t - logsumexp(z): no log(0) even when p_t underflows
        log_p = z[rows, t_safe] - (m + np.log(total))[:, 0]  # (N,)
        probs /= total  # softmax, kept for the backward pass
        count = int(scored.sum())
        self._probs, self._t, self._scored, self._count, self._shape = probs, t_safe, scored, count, logits.shape
        if count == 0:
            return float("nan")
        return float(-np.sum(log_p[scored], dtype=np.float64) / count)

    def backward(self, scale: float = 1.0) -> np.ndarray:
        """The gradient of `scale * loss` with respect to the logits, shape (..., V)."""
        dz = self._probs  # reuse the softmax buffer: (N, V)
        rows = np.arange(dz.shape[0])
        dz[rows, self._t] -= 1.0
        row_scale = np.where(self._scored, scale / max(self._count, 1), 0.0).astype(dz.dtype)  # ignored rows -> 0
        dz *= row_scale[:, None]
        shape = self._shape
        self._probs = None
        return dz.reshape(shape)
