# Source of notebooks/02_encoder_block.ipynb: edit this file, then run `python notebooks/_build.py`.

# %% [markdown]
# # Lab 2 — A minimal transformer encoder block
#
# One transformer layer is four ideas stacked: **layer normalisation**,
# **multi-head self-attention**, a position-wise **feed-forward** network, and
# **residual connections** around both. In this lab you build each piece, put them
# together in `attnlab.nn.TransformerBlock`, run it on synthetic data, and look at
# how the token representations (the *hidden states*) change from layer to layer.
#
# **Learning goals**
#
# - Write layer normalisation and the multi-head reshapes yourself, and check them.
# - Know what each sub-layer does to the shapes `(B, T, C)`, and which parts mix tokens (attention) and which do not (feed-forward, LayerNorm).
# - See why a transformer needs positional information, and how padding masks keep padding out.
# - Measure hidden states layer by layer (norm, cosine similarity between tokens, effective rank), and see *rank collapse* when the residual connections are removed.
#
# Shapes: **B** batch, **T** tokens, **C** channels (`embed_dim`), **H** heads, **D** head size (C / H).
#
# References: Vaswani et al. (2017); Ba et al. (2016) for LayerNorm; Xiong et al. (2020) on pre- vs post-norm; Dong et al. (2021), *Attention is not all you need: pure attention loses rank doubly exponentially with depth*.

# %%
# %matplotlib inline
import numpy as np
import torch

from attnlab.analysis import hidden_state_stats
from attnlab.exercises import check, labs, solutions
from attnlab.nn import FeedForward, FixedPositionalEncoding, MultiHeadAttention, TransformerBlock, padding_mask
from attnlab.nn.positional import sinusoidal_table
from attnlab.viz import attention as attention_plots
from attnlab.viz import hidden_states as hidden_state_plots
from attnlab.viz import positions as position_plots

labs.setup(seed=0)
torch.set_grad_enabled(False)  # this lab only runs forward passes
np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## Synthetic data
#
# A batch of 4 "sentences" of 10 tokens from a vocabulary of 50. The last two
# sentences are shorter and padded with token 0; `attention_mask` marks real tokens
# with 1, as Hugging Face does. An embedding table turns ids into vectors of size C = 64.

# %%
B, T, C, H = 4, 10, 64, 4
vocab_size = 50
lengths = torch.tensor([10, 10, 7, 4])
attention_mask = (torch.arange(T)[None, :] < lengths[:, None]).long()  # (B, T): 1 = real token
input_ids = torch.randint(1, vocab_size, (B, T)) * attention_mask  # padding -> id 0

embedding = torch.nn.Embedding(vocab_size, C)
x = embedding(input_ids)  # (B, T, C)
print("input_ids:\n", input_ids)
print("embeddings:", tuple(x.shape))

# %% [markdown]
# ## 1. Layer normalisation
#
# LayerNorm normalises **each token's vector** over its C channels to mean 0 and
# variance 1, then scales and shifts it with learned $\gamma, \beta$:
#
# $$\mathrm{LN}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta, \qquad \mu, \sigma^2 \text{ over the last axis.}$$
#
# ### Exercise 1: `layer_norm(x, gamma, beta, eps=1e-5)`
#
# Use the *biased* variance (divide by C, NumPy's default `x.var(...)`; in PyTorch `unbiased=False`).


# %%
@labs.exercise
def layer_norm(x, gamma, beta, eps=1e-5):
    # your code here
    raise NotImplementedError


check.layer_norm(layer_norm)

# %% [markdown]
# PyTorch's `nn.LayerNorm` computes the same thing (the reference solution
# `attnlab.exercises.solutions.layer_norm` against it), and after it every token has mean 0
# and standard deviation 1:

# %%
norm = torch.nn.LayerNorm(C)
torch.nn.init.normal_(norm.weight)  # random gamma and beta, so the comparison means something
torch.nn.init.normal_(norm.bias)
ours = solutions.layer_norm(x.numpy(), norm.weight.detach().numpy(), norm.bias.detach().numpy())
print("largest difference to nn.LayerNorm:", np.abs(ours - norm(x).numpy()).max())
plain = torch.nn.LayerNorm(C)(x)  # gamma = 1, beta = 0
print("per-token mean:", plain.mean(-1)[0, :4].numpy(), " per-token std:", plain.std(-1, unbiased=False)[0, :4].numpy())

# %% [markdown]
# ## 2. Multi-head self-attention
#
# Each token's vector is projected to a query, a key and a value of size C; these
# are split into H heads of size D = C / H, each head attends separately, and the
# heads are concatenated again. Heads are a tensor dimension, not a Python loop:
#
# `(B, T, C)` → reshape `(B, T, H, D)` → transpose `(B, H, T, D)` … attention … → `(B, H, T, D)` → `(B, T, C)`.
#
# ### Exercise 2: split and merge the heads
#
# `multi_head_split(x, num_heads)`: `(B, T, C)` → `(B, H, T, D)`, where head h takes
# channels `h*D … (h+1)*D - 1`. `multi_head_merge(x)`: the inverse.


# %%
@labs.exercise
def multi_head_split(x, num_heads):
    # your code here
    raise NotImplementedError


@labs.exercise
def multi_head_merge(x):
    # your code here
    raise NotImplementedError


check.multi_head_split(multi_head_split)
check.multi_head_merge(multi_head_merge)

# %% [markdown]
# `attnlab.nn.MultiHeadAttention` does the projections (one fused `qkv` layer of
# shape `(3C, C)`), the split, attention and merge, and an output projection. The
# padding mask `(B, 1, 1, T)` stops every query from attending to padded keys.

# %%
mha = MultiHeadAttention(embed_dim=C, num_heads=H)
mask = padding_mask(attention_mask)  # (B, 1, 1, T), True = real key = may attend
out, weights = mha(x, mask=mask, need_weights=True)
print("output:", tuple(out.shape), " weights:", tuple(weights.shape), "(B, H, T, T)")
print("weight on padded keys in sentence 3:", float(weights[3, :, :, 4:].sum()))

# %%
tokens = [f"t{i}" for i in range(T)]
attention_plots.plot_attention_grid(
    [weights], tokens, batch_index=2, title="4 heads of one untrained layer (sentence 2: the last 3 tokens are padding)"
)

# %% [markdown]
# ## 3. The feed-forward network
#
# Two linear layers with a GELU between them, `C → 4C → C`, applied to **every
# token separately**. Changing one token changes only that token's output:

# %%
ff = FeedForward(C, 4 * C, activation="gelu")
changed = x.clone()
changed[0, 3] += 1.0  # change token 3 of sentence 0
moved = (ff(changed) - ff(x))[0].norm(dim=-1)  # (T,) how much each token's output moved
print("change of each token's output:", moved.numpy())

# %% [markdown]
# Attention, in contrast, mixes tokens: the same change moves every output of the sentence.

# %%
moved_attn = (mha(changed, mask=mask)[0] - mha(x, mask=mask)[0])[0].norm(dim=-1)
print("change of each token's attention output:", moved_attn.numpy())

# %% [markdown]
# ## 4. The block: residuals and norms
#
# `TransformerBlock` puts it together. Pre-norm (GPT-2, most modern models):
#
# $$x \leftarrow x + \mathrm{Attention}(\mathrm{LN}_1(x)), \qquad x \leftarrow x + \mathrm{FF}(\mathrm{LN}_2(x))$$
#
# Post-norm (the original transformer, BERT): $x \leftarrow \mathrm{LN}_1(x + \mathrm{Attention}(x))$, and the same for FF.
# The residual connection `x + ...` means each sub-layer only *adds a correction*
# to the stream of token vectors: the "residual stream".

# %%
block = TransformerBlock(embed_dim=C, num_heads=H, hidden_dim=4 * C, norm_first=True).eval()
trace = {}
result = block(x, mask=mask, trace=trace)
print("block output:", tuple(result.hidden.shape))
print(f"parameters: {sum(p.numel() for p in block.parameters()):,}")
for name, module in [
    ("attention", block.attn),
    ("feed-forward", block.ff),
    ("2 LayerNorms", [block.norm1, block.norm2]),
]:
    modules = module if isinstance(module, list) else [module]
    print(f"  {name:13s} {sum(p.numel() for m in modules for p in m.parameters()):>7,}")

real = attention_mask.bool()
print("mean token norm:")
print(f"  input                   {x[real].norm(dim=-1).mean():.3f}")
for key in ["attn_out", "after_attn", "ff_out", "after_ff"]:
    print(f"  {key:23s} {trace[key][real].norm(dim=-1).mean():.3f}")

# %% [markdown]
# **Padding never changes the real tokens.** Replace the padding ids by other ids:
# the outputs at real positions stay the same, because no query attends to a padded key.

# %%
other_padding = input_ids.clone()
other_padding[attention_mask == 0] = 7
y1 = block(embedding(input_ids), mask=mask).hidden
y2 = block(embedding(other_padding), mask=mask).hidden
print("largest change at real tokens:", float((y1 - y2)[real].abs().max()))

# %% [markdown]
# **Without positions, order does not matter.** Self-attention compares every
# token with every other token and the feed-forward acts on each token alone, so
# permuting the input tokens just permutes the outputs (the block is
# *permutation-equivariant*): "dog bites man" and "man bites dog" get the same
# vectors, in a different order.

# %%
perm = torch.randperm(T)
full = x[:2]  # two sentences without padding
y = block(full).hidden
y_perm = block(full[:, perm]).hidden
print("block(permuted x) == permuted block(x):", torch.allclose(y_perm, y[:, perm], atol=1e-5))

# %% [markdown]
# ### Exercise 3: sinusoidal positional encodings
#
# The fix is to add a position vector to each token. The original transformer uses
# fixed sinusoids of different frequencies:
#
# $$PE[p, 2i] = \sin\!\left(p / 10000^{2i/C}\right), \qquad PE[p, 2i+1] = \cos\!\left(p / 10000^{2i/C}\right).$$
#
# Write `positional_encoding(num_positions, dim)` returning the `(T, C)` table.


# %%
@labs.exercise
def positional_encoding(num_positions, dim):
    # your code here
    raise NotImplementedError


check.positional_encoding(positional_encoding)

# %% [markdown]
# With positions added, a permutation changes the result, and the table looks like
# this (each row a position; fast waves on the left, slow on the right):

# %%
positions = FixedPositionalEncoding(max_seq_len=T, dim=C)
with_pos = full + positions(torch.arange(T))
with_pos_perm = full[:, perm] + positions(torch.arange(T))
print(
    "still equivariant with positions?",
    torch.allclose(block(with_pos_perm).hidden, block(with_pos).hidden[:, perm], atol=1e-5),
)
print(
    "library table == reference solution:",
    np.allclose(sinusoidal_table(T, C).numpy(), solutions.positional_encoding(T, C), atol=1e-6),
)
position_plots.plot_positions(panel="sinusoidal", num_positions=64, dim=C)

# %% [markdown]
# ## 5. Hidden states, layer by layer
#
# Stack several blocks and keep every intermediate representation: the input
# embeddings are hidden state 0, block $\ell$'s output is hidden state $\ell$ (the
# layout of Hugging Face's `output_hidden_states`). `attnlab.analysis.hidden_state_stats`
# summarises each over the real tokens:
#
# - **norm**: how long the token vectors are;
# - **cos(tokens)**: mean cosine similarity between different tokens of a sentence (1 = all tokens look alike);
# - **effective rank**: how many directions the token vectors really use (Roy & Vetterli 2007).

# %%
num_layers = labs.pick(normal=12, fast=6)


def run_stack(blocks, x, mask):
    """Hidden states of a stack of blocks: [input, after block 1, ..., after block L]."""
    states = [x]
    for layer in blocks:
        states.append(layer(states[-1], mask=mask).hidden)
    return states


torch.manual_seed(0)
x_in = embedding(input_ids) + positions(torch.arange(T))
pre_norm = [TransformerBlock(C, H, 4 * C, norm_first=True).eval() for _ in range(num_layers)]
post_norm = [TransformerBlock(C, H, 4 * C, norm_first=False).eval() for _ in range(num_layers)]
stats_pre = hidden_state_stats(run_stack(pre_norm, x_in, mask), attention_mask)
stats_post = hidden_state_stats(run_stack(post_norm, x_in, mask), attention_mask)
print("pre-norm stack\n" + stats_pre.table())
print("\npost-norm stack\n" + stats_post.table())

# %% [markdown]
# In the pre-norm stack nothing normalises the residual stream, so its norm grows
# with depth; post-norm ends every sub-layer with a LayerNorm, keeping the norm
# near $\sqrt{C} = 8$.
#
# **Rank collapse.** Now remove the residual connections and the feed-forward
# layers: a stack of attention layers alone. Each layer replaces every token by a
# weighted *average* of tokens, and averages of averages become alike: the token
# vectors collapse towards one direction (cosine → 1, effective rank → 1).

# %%
attention_only = [MultiHeadAttention(C, H).eval() for _ in range(num_layers)]
states = [x_in]
for layer in attention_only:
    states.append(layer(states[-1], mask=mask)[0])
stats_attention_only = hidden_state_stats(states, attention_mask)
print("attention only, no residuals\n" + stats_attention_only.table())

# %%
hidden_state_plots.plot_hidden_state_stats(
    {"pre-norm blocks": stats_pre, "post-norm blocks": stats_post, "attention only": stats_attention_only},
    title=f"{num_layers} untrained layers on synthetic tokens",
)

# %%
hidden_state_plots.plot_token_similarity(
    states, tokens, layers=[0, 1, num_layers], title="Attention only: token vectors become alike"
)

# %% [markdown]
# A complete encoder (`attnlab.models.encoder.Encoder`, the model behind BERT and
# MiniLM in lab 6) is exactly this: token + position embeddings, then a stack of
# `TransformerBlock`s. `attnlab.analysis.collect_hidden_states(model, ids, mask)`
# runs any attnlab model and returns its hidden states for the same analysis.
#
# ## Things to try
#
# - Give `layer_norm` the unbiased variance (`ddof=1`) and read the hint.
# - Swap the reshape order in your `multi_head_split` (reshape to `(B, H, T, D)` directly, without the transpose): what does `check` say?
# - Make `num_layers` 24 and compare the norms of the pre-norm and post-norm stacks.
# - Put the residual connection back into the attention-only stack (`states.append(states[-1] + layer(...)[0])`): does the rank still collapse?
# - Use `FixedPositionalEncoding(T, C, kind="fourier")` instead of sinusoids, and plot `position_plots.plot_positions(panel="offset")`.
