# Source of notebooks/01_attention_from_scratch.ipynb: edit this file, then run `python notebooks/_build.py`.

# %% [markdown]
# # Lab 1 — Attention from scratch: NumPy, then PyTorch, then the fused kernel
#
# Attention lets every token look at every other token and take a weighted
# average of what it finds. In this lab you compute it three ways, which all give
# the same numbers:
#
# 1. in **NumPy**, one line per step, with the backward pass written out by hand (`attnlab.scratch`);
# 2. in **PyTorch**, step by step (`attnlab.nn.attention_naive`), where autograd finds the gradients;
# 3. with PyTorch's **fused kernel** `F.scaled_dot_product_attention`, which never stores the attention matrix.
#
# **Learning goals**
#
# - Compute $\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(QK^\top/\sqrt{d}\right)V$ and explain every step, including why we divide by $\sqrt{d}$.
# - Use boolean masks (this library's convention: `True` = *may attend*), in particular the causal mask of a GPT.
# - Check that three implementations agree, and measure which is fastest and why.
#
# Reference: Vaswani et al. (2017), *Attention Is All You Need*, section 3.2.

# %%
# %matplotlib inline
import timeit

import numpy as np
import torch
import torch.nn.functional as F

from attnlab import scratch
from attnlab.exercises import check, labs, solutions
from attnlab.nn import attention_naive, scaled_dot_product_attention
from attnlab.viz import attention as attention_plots

labs.setup(seed=0)
np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## 1. Attention in NumPy, step by step
#
# Four tokens, each with a query, a key and a value vector of size $d = 8$. (In a
# transformer these come from multiplying the token embeddings by three learned
# matrices; here they are random.)

# %%
rng = np.random.default_rng(0)
tokens = ["the", "cat", "sat", "down"]
T, d = len(tokens), 8
q = rng.normal(size=(T, d))  # (T, d): what each token is looking for
k = rng.normal(size=(T, d))  # (T, d): what each token offers to be found by
v = rng.normal(size=(T, d))  # (T, d): what each token passes on

scores = q @ k.T  # (T, T): row i = how well query i matches every key
scaled = scores / np.sqrt(d)  # keep the scores' spread independent of d
weights = solutions.softmax(scaled)  # (T, T): each row sums to 1
out = weights @ v  # (T, d): row i = weighted average of the values

print("weights (rows = queries, columns = keys):\n", weights)
print("row sums:", weights.sum(axis=1))

# %%
attention_plots.plot_attention_head(weights, tokens, title="Random queries and keys: attention weights")

# %% [markdown]
# **Why divide by $\sqrt{d}$?** If the entries of $q$ and $k$ have variance 1, the
# dot product $q \cdot k$ is a sum of $d$ such products: its standard deviation is
# $\sqrt{d}$. Large scores push the softmax towards a one-hot vector ("saturation"),
# where its gradient is almost zero and learning stalls. Dividing by $\sqrt{d}$ keeps
# the spread at 1 whatever the head size:

# %%
print(f"{'d':>6} {'std of q.k':>12} {'max weight, unscaled':>22} {'max weight, scaled':>20}")
for dim in [4, 16, 64, 256, 1024]:
    qs, ks = rng.normal(size=(200, dim)), rng.normal(size=(16, dim))  # 200 queries, 16 keys
    raw = qs @ ks.T
    print(
        f"{dim:>6} {raw.std():>12.1f} {solutions.softmax(raw).max(axis=1).mean():>22.3f} "
        f"{solutions.softmax(raw / np.sqrt(dim)).max(axis=1).mean():>20.3f}"
    )

# %% [markdown]
# ### Exercise 1: attention
#
# Write `attention(q, k, v, mask=None)` for inputs of shape `(..., T, d)` (NumPy or
# PyTorch). `mask` is boolean and broadcastable to `(..., T, S)`: **True means "may
# attend"**. Blocked scores become $-\infty$ *before* the softmax, so their weight is exactly 0.
# Hints: the transpose of the last two axes is `np.swapaxes(k, -1, -2)` (or `k.transpose(-2, -1)` in PyTorch);
# `np.where(mask, scores, -np.inf)` blocks scores.


# %%
@labs.exercise
def attention(q, k, v, mask=None):
    # your code here
    raise NotImplementedError


check.attention(attention)

# %% [markdown]
# The check compares your function with the reference on several inputs and
# recognises typical mistakes. For example, applying the mask *after* the softmax
# (the weights of a row no longer sum to 1):

# %%
result = check.attention(check.mistake_function("attention", "mask_after_softmax"))

# %% [markdown]
# ### Exercise 2: the causal mask
#
# A GPT predicts the next token, so token $i$ may only look at tokens $0 \dots i$.
# Write `causal_mask(size)` returning a `(size, size)` boolean array with `True` on
# and below the diagonal.


# %%
@labs.exercise
def causal_mask(size):
    # your code here
    raise NotImplementedError


check.causal_mask(causal_mask)

# %% [markdown]
# The library's version, and what it does to the weights: the upper triangle is 0,
# and the first token can only attend to itself.

# %%
mask = scratch.causal_mask(T)
print(mask)
masked_weights = solutions.softmax(np.where(mask, scaled, -np.inf))
attention_plots.plot_attention_head(masked_weights, tokens, title="Causal attention: no looking ahead")

# %% [markdown]
# ### The NumPy engine: forward *and* backward by hand
#
# `attnlab.scratch.ScaledDotProductAttention` is the layer the NumPy GPT trains
# with. It works on stacked heads `(B, H, T, d)`, and its `backward` turns the
# gradient of the loss with respect to the output into gradients for $q$, $k$, $v$
# (the formulas are in its docstring). Same output as our four lines above:

# %%
layer = scratch.ScaledDotProductAttention()
out_scratch = layer(q[None, None], k[None, None], v[None, None], mask=mask)  # (1, 1, T, d)
out_by_hand = masked_weights @ v
print("largest difference:", np.abs(out_scratch[0, 0] - out_by_hand).max())

# %% [markdown]
# Its hand-written gradients against PyTorch's autograd:

# %%
grad_out = rng.normal(size=(1, 1, T, d))  # pretend dLoss/dOutput
dq, dk, dv = layer.backward(grad_out)

qt, kt, vt = (torch.tensor(x[None, None], requires_grad=True) for x in (q, k, v))
out_t = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=torch.from_numpy(mask))
out_t.backward(torch.from_numpy(grad_out))
for name, ours, theirs in [("dq", dq, qt.grad), ("dk", dk, kt.grad), ("dv", dv, vt.grad)]:
    print(f"{name}: largest difference to autograd {np.abs(ours - theirs.numpy()).max():.2e}")

# %% [markdown]
# ## 2. PyTorch, step by step
#
# `attnlab.nn.attention_naive` is the same five steps in PyTorch (read its source:
# `attention_naive??`). It returns the output and the weights, and works on a
# batch of heads `(B, H, T, d)`:

# %%
q4, k4, v4 = (torch.from_numpy(x[None, None]) for x in (q, k, v))  # (1, 1, T, d), float64
out_naive, weights_naive = attention_naive(q4, k4, v4, torch.from_numpy(mask))
torch.testing.assert_close(out_naive[0, 0], torch.from_numpy(out_by_hand))
torch.testing.assert_close(weights_naive[0, 0], torch.from_numpy(masked_weights))
print("PyTorch step by step == NumPy by hand: OK")

# %% [markdown]
# ## 3. The fused kernel
#
# `F.scaled_dot_product_attention` computes the same function in one call. On
# GPUs (FlashAttention) and on CPUs it works in tiles and never writes the whole
# $T \times T$ weight matrix to memory, which saves memory and time for long
# sequences. It takes a boolean mask with the same convention as ours (`True` =
# may attend), or `is_causal=True`. `attnlab.nn.scaled_dot_product_attention`
# dispatches to it unless the weights are needed.

# %%
B, H, T_big, D = 2, 4, 32, 16
qb, kb, vb = (torch.randn(B, H, T_big, D) for _ in range(3))
causal = torch.ones(T_big, T_big, dtype=torch.bool).tril()

naive_out, _ = attention_naive(qb, kb, vb, causal)
fused_mask = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=causal)
fused_causal = F.scaled_dot_product_attention(qb, kb, vb, is_causal=True)
ours_fused, no_weights = scaled_dot_product_attention(qb, kb, vb, is_causal=True, impl="fused")

torch.testing.assert_close(fused_mask, naive_out)
torch.testing.assert_close(fused_causal, naive_out)
torch.testing.assert_close(ours_fused, naive_out)
print(
    "naive == fused (mask) == fused (is_causal) == attnlab fused:",
    tuple(naive_out.shape),
    "| weights returned:",
    no_weights,
)

# %% [markdown]
# One case at the edge: a query whose keys are *all* blocked. Mathematically the
# softmax of a row of $-\infty$ is undefined (0/0); the written-out formula gives NaN,
# and what the fused kernel returns has changed between PyTorch versions. attnlab
# defines the output as 0 (the query attends to nothing), in both of its paths:

# %%
nothing_visible = torch.zeros(1, 3, dtype=torch.bool)  # one query, three keys, all blocked
x1, x2, x3 = torch.randn(1, 1, 1, 4), torch.randn(1, 1, 3, 4), torch.randn(1, 1, 3, 4)
by_formula = torch.softmax((x1 @ x2.transpose(-2, -1)).masked_fill(~nothing_visible, float("-inf")), dim=-1) @ x3
print("softmax formula written out:    ", by_formula.flatten())
print(
    f"F.scaled_dot_product_attention: {F.scaled_dot_product_attention(x1, x2, x3, attn_mask=nothing_visible).flatten()}"
    f"  (PyTorch {torch.__version__})"
)
print(
    "attnlab, naive path:           ",
    scaled_dot_product_attention(x1, x2, x3, nothing_visible, impl="naive")[0].flatten(),
)
print(
    "attnlab, fused path:           ",
    scaled_dot_product_attention(x1, x2, x3, nothing_visible, impl="fused")[0].flatten(),
)

# %% [markdown]
# ## 4. Which is fastest?
#
# The same causal attention (batch 4, 4 heads, head size 32, float32) in the three
# implementations, for growing sequence lengths. The naive versions build the
# `(B, H, T, T)` weight matrix; its size grows with $T^2$.


# %%
def median_ms(fn, repeat=3):
    """Median time of one call of fn in milliseconds (timeit picks how many calls to time)."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return 1000 * np.median(timer.repeat(repeat=repeat, number=number)) / number


numpy_layer = scratch.ScaledDotProductAttention()
repeat = labs.pick(normal=5, fast=1)  # timings per size (the median is reported)
print(f"{'T':>6} {'NumPy (scratch)':>16} {'PyTorch naive':>14} {'PyTorch fused':>14}   weight matrix")
for T_len in labs.pick(normal=[64, 256, 1024], fast=[64, 256]):
    qt_, kt_, vt_ = (torch.randn(4, 4, T_len, 32) for _ in range(3))
    qn, kn, vn = qt_.numpy(), kt_.numpy(), vt_.numpy()
    mask_t = torch.ones(T_len, T_len, dtype=torch.bool).tril()
    with torch.inference_mode():
        times = [
            median_ms(lambda: numpy_layer(qn, kn, vn, is_causal=True), repeat),
            median_ms(lambda: attention_naive(qt_, kt_, vt_, mask_t), repeat),
            median_ms(lambda: F.scaled_dot_product_attention(qt_, kt_, vt_, is_causal=True), repeat),
        ]
    megabytes = 4 * 4 * T_len * T_len * 4 / 1e6
    print(f"{T_len:>6} {times[0]:>13.2f} ms {times[1]:>11.2f} ms {times[2]:>11.2f} ms   {megabytes:8.1f} MB")

# %% [markdown]
# Timings depend on the machine (and on what else runs on it), but the pattern is
# typical: NumPy and the naive PyTorch code do the same matrix products; the fused
# kernel skips the masked half of the work and never writes the weight matrix,
# and the gap grows with $T$.
#
# ## Things to try
#
# - Remove the division by $\sqrt{d}$ in your `attention` and run `check.attention` again: which hint do you get?
# - Write `attention` in PyTorch instead of NumPy; `check.attention` accepts both.
# - Make the mask block *everything* for one query in your NumPy version: what does your function return? (The library returns zeros.)
# - Add `torch.set_num_threads(1)` before the timing cell and compare.
# - Time the backward pass too: `out.sum().backward()` for the naive and the fused version.
