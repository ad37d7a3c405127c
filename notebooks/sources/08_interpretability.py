# Source of notebooks/08_interpretability.ipynb: edit this file, then run `python notebooks/_build.py`.

# %% [markdown]
# # Lab 8 — Look inside: hook points, an induction head, ablation and patching
#
# Attention maps show *what* a model looks at; they do not show *why* it answers what it
# answers. In this lab you train a tiny transformer that learns to copy in context, find
# the two heads that do it, predict what removing each head will break, and then test the
# prediction with causal experiments: **ablation** (remove a head's output) and
# **activation patching** (copy one activation from another input).
#
# **Learning goals**
#
# - Read and replace any activation of an attnlab model by its hook-point name (`run_with_cache`, `run_with_hooks`).
# - Watch a two-layer attention-only model learn in-context copying with a sudden *phase change*.
# - Compute a head's previous-token score from its attention pattern, and find the previous-token head.
# - Explain the induction circuit (a previous-token head in layer 0 feeding an induction head in layer 1, K-composition), predict which ablations break it, and check the prediction.
# - Tell apart what ablation measures (is a head *necessary*?) from what patching measures (does a head *carry the information* that differs between two inputs?).
#
# The experiments follow Elhage et al. 2021 (*A Mathematical Framework for Transformer
# Circuits*), Olsson et al. 2022 (*In-context Learning and Induction Heads*) and, for
# patching, Wang et al. 2022 and Heimersheim & Nanda 2024. `docs/interpretability.md` is the
# guide to `attnlab.interp`.
#
# **Time.** About 40 seconds on 2 CPU cores (the induction model trains in about ten
# seconds, the one-layer control of section 7 in about twenty); with `ATTNLAB_FAST=1` the
# control trains only a few hundred steps.

# %%
# %matplotlib inline
import math

import numpy as np
import torch
from IPython.display import Image, display

from attnlab.exercises import check, labs, solutions
from attnlab.interp import (
    InductionConfig,
    head_ablation_hooks,
    head_scores,
    hook_names,
    loss_change_per_head,
    patch_heads,
    patch_residual,
    repeated_random_tokens,
    run_with_cache,
    run_with_hooks,
    train_induction,
)
from attnlab.interp import figures as interp_figures
from attnlab.interp.induction import half_losses, write_figures
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.viz import attention as attention_plots

labs.setup(seed=0)

# %% [markdown]
# ## 1. Hook points: every activation has a name
#
# The model of this lab is a GPT without feed-forward layers (`attn_only`): token and
# learned position embeddings, two attention layers of two heads each, a final norm and the
# unembedding. `InductionConfig` holds the lab's settings (docs/interpretability.md); its
# `model_config()` is the model's ordinary `GPTConfig`.
#
# Every module of an attnlab transformer owns named **hook points**: identity modules that
# do nothing until you attach a hook. `hook_names(model)` lists them in the order the
# forward pass reaches them; `run_with_cache(model, ids)` runs the model once and keeps every
# activation (or the ones you name) in a dictionary-like cache.

# %%
config = InductionConfig(seed=0)  # V = 64 tokens, sequences of 2 x 16, 2 layers x 2 heads, width 64
print(config.model_config())
torch.manual_seed(config.seed)
untrained = GPT(config.model_config()).eval()

ids = repeated_random_tokens(config.vocab_size, config.half_len, batch=1, seed=1)  # (1, 32): [x, x]
logits, cache = run_with_cache(untrained, ids)
print(f"\n{len(cache)} hook points, logits {tuple(logits.shape)}\n")
for name in hook_names(untrained):
    print(f"  {name:30s} {tuple(cache[name].shape)}")

# %% [markdown]
# Shapes: B = 1 sequence, T = 32 positions, C = 64 channels, H = 2 heads of D = 32
# channels. `hook_q`/`hook_k`/`hook_v` and `hook_z` (each head's weighted values, before the
# output projection) keep a head axis, `hook_pattern` is the (B, H, T, S) attention
# weights. A model with feed-forward layers has a few more points per block:

# %%
with_mlp = GPT(GPTConfig(vocab_size=64, max_seq_len=32, num_layers=1, num_heads=2, embed_dim=64))
print([name for name in hook_names(with_mlp) if name.startswith("blocks.0.")])

# %% [markdown]
# The cache makes the **residual stream** concrete: each block *adds* its attention output
# to the stream, nothing else happens to it in an attention-only block. And the hooks are
# free when none is attached: a plain forward gives the same logits.

# %%
for layer in range(config.num_layers):
    added = cache[f"blocks.{layer}.hook_resid_pre"] + cache[f"blocks.{layer}.hook_attn_out"]
    torch.testing.assert_close(added, cache[f"blocks.{layer}.hook_resid_post"])
torch.testing.assert_close(cache["hook_embed"] + cache["hook_pos_embed"], cache["blocks.0.hook_resid_pre"])
with torch.no_grad():
    torch.testing.assert_close(untrained(ids).logits, logits)
print("resid_post = resid_pre + attn_out in every block; the stream starts as embed + pos_embed; same logits")

# %% [markdown]
# A hook is a function `fn(activation, name)`. Returning a tensor **replaces** the
# activation; that is all ablation and patching are. Here a hook wipes out the position
# embedding: the untrained model's predictions change (by how much, on average, is the
# total variation distance below).


# %%
def no_positions(activation, name):
    return torch.zeros_like(activation)


with torch.no_grad():
    changed = run_with_hooks(untrained, ids, fwd_hooks=[("hook_pos_embed", no_positions)])
p, q = logits.softmax(-1), changed.softmax(-1)
print(f"mean total variation between the next-token distributions: {0.5 * (p - q).abs().sum(-1).mean():.3f}")

# %% [markdown]
# ## 2. Train a model that copies in context
#
# The training data are random tokens whose first segment repeats at once: `[x, x, filler]`,
# the segment's length varying from sequence to sequence. The first copy of `x` is
# unpredictable (the best loss there is about ln V), but once the repeat starts, every next
# token can be *copied* from earlier in the context. We measure both on a fixed probe batch
# `[x, x]` with halves of 16: the **first-half loss** (nothing to copy) and the
# **repeated-half loss** (copyable).
#
# Olsson et al. saw that models learn this suddenly: the repeated-half loss sits near ln V
# and then collapses within a few hundred steps, a **phase change**, at the moment two heads
# appear (sections 3 and 4). `train_induction` detects it (the repeated-half loss below 0.3 x
# the first half's, for three evaluations in a row) and stops 300 steps later.
#
# With the instructor's kit installed (`attnlab room install`), the cell uses the kit's
# model and its training record instead (trained by `attnlab room build` with this very
# config) and says so; set `ATTNLAB_TRAIN=1` to train your own anyway.

# %%
from attnlab import pretrained
from attnlab.room.models import load_induction

torch.manual_seed(config.seed)


def progress(e):
    if e["step"] % 100 == 0:
        print(f"step {e['step']:4d}  first half {e['first_loss']:.2f}  repeated half {e['repeated_loss']:.2f}")


kit = load_induction(config)  # None: no kit model for this config (or ATTNLAB_TRAIN=1)
if kit is not None:
    print(pretrained.describe("induction", "induction model"))
    model, result = kit
else:
    model, result = train_induction(config, on_eval=progress)
print(
    f"\nphase change at step {result.phase_change_step} after {result.phase_change_seconds:.1f} s of training; "
    f"{result.trained_steps} steps in {result.train_seconds:.1f} s; ln V = {math.log(config.vocab_size):.2f}"
)

# %% [markdown]
# `write_figures` draws the lab's three figures into a run folder (the command line
# `attnlab interp induction` writes the same). The loss curves first:

# %%
run_dir = labs.new_run_dir("08_interpretability")
loss_png, scores_png, pattern_png = write_figures(model, config, result, run_dir)
display(Image(filename=str(loss_png)))

# %% [markdown]
# The first half stays at about ln V: random tokens cannot be predicted. The repeated half
# drops from the same level to a fraction of it. What changed inside the model?
#
# ## 3. Exercise 1: find the previous-token head
#
# A **previous-token head** attends from every position to the position just before it.
# Its score is the mean attention weight on the previous token: for patterns
# `patterns[l, b, h, t, s]` (layer, sequence, head, query t, key s), the weight on key
# s = t − 1, averaged over the sequences of the batch and the queries t = 1 … T−1 (query 0
# has no previous token). The cache of the trained model on the probe batch gives
# the patterns of both layers stacked: (L, B, H, T, T).

# %%
probe = repeated_random_tokens(config.vocab_size, config.half_len, batch=64, seed=2)  # (64, 32): [x, x]
with torch.no_grad():
    _, cache = run_with_cache(model, probe, names="blocks.*.attn.hook_pattern")
patterns = cache.stack("attn.hook_pattern").numpy()
print("patterns", patterns.shape)

# %% [markdown]
# Write `previous_token_scores(patterns)`: return the (L, H) array of every head's
# previous-token score, in NumPy or PyTorch (`np.diagonal` and `torch.diagonal` take any
# diagonal of a matrix: look at their `offset`, and at which axes they use).


# %%
@labs.exercise
def previous_token_scores(patterns):
    # your code here
    raise NotImplementedError


check.previous_token_scores(previous_token_scores)

# %% [markdown]
# The library computes the same score, with four others (`head_scores`); the reference
# solution agrees with it. The previous-token head is layer 0's head with the highest score.

# %%
prev_scores = solutions.previous_token_scores(patterns)
scores = head_scores(model, probe)
np.testing.assert_allclose(prev_scores, scores.previous_token, atol=1e-6)
prev_head = (0, int(np.argmax(prev_scores[0])))
print("previous-token scores (rows = layers, columns = heads):\n", prev_scores.round(2))
print(f"previous-token head: L{prev_head[0]}H{prev_head[1]} (the lab's own pick: {result.previous_token_head})")

# %% [markdown]
# Its pattern on one probe sequence: a stripe just below the diagonal (labels are the
# token ids; the sequence repeats after 16 tokens).

# %%
tokens = [str(t) for t in probe[0].tolist()]
attention_plots.plot_attention_head(
    patterns[prev_head[0], 0, prev_head[1]],
    tokens,
    title=f"L{prev_head[0]}H{prev_head[1]}: attention on the previous token",
)

# %% [markdown]
# In the first half it is a sharp previous-token head; in the second half its weight spreads
# out, so its mean score is well below 1. The first half is where it matters: there it
# writes "the token before me was A" into each position of the residual stream, and those
# first-half positions are the keys that layer 1 will search (next section).
#
# ## 4. The induction head
#
# On `[x, x]`, the query at position t of the second half holds the token that also sat at
# t − 16. The token to predict is the one that *followed* it then, at t − 16 + 1. An
# **induction head** attends exactly there: "find the earlier position whose previous token
# is my token, and copy what is there". Its **prefix-matching** (induction) score is its
# mean weight from second-half queries on t − N + 1. All five scores of every head:

# %%
interp_figures.plot_head_scores(scores, title="head scores of the trained model on [x, x]")

# %%
induction_layer = config.num_layers - 1
top = float(scores.induction[induction_layer].max())
induction_heads = [
    (induction_layer, h) for h in range(config.num_heads) if scores.induction[induction_layer, h] >= 0.5 * top
]
print("induction scores:\n", scores.induction.round(2))
print("induction heads (layer 1, at least half the top score):", [f"L{a}H{b}" for a, b in induction_heads])
display(Image(filename=str(pattern_png)))

# %% [markdown]
# The stripe runs one step right of the diagonal that is 16 positions back. Here **both**
# layer-1 heads became induction heads and share the work. Layer 0 cannot do this by itself:
# to know which earlier position *followed* my token, a key must hold its previous token,
# and that information exists only after layer 0's previous-token head has written it.
# The layer-1 heads' keys read it: **K-composition**.
#
# The scores over training show the circuit appear at the phase change (dashed lines:
# layer 0, solid: layer 1):

# %%
display(Image(filename=str(scores_png)))

# %% [markdown]
# ## 5. Exercise 2: predict which ablation breaks copying, then run it
#
# **Mean ablation** removes a head: its output (its slice of `hook_z`) is replaced by the
# average output over a reference batch, so what the head says *about this input* is gone
# while the stream keeps its usual size. `head_ablation_hooks` builds the hooks; we measure
# the repeated-half loss with them attached. Three ablations are prepared:

# %%
reference = repeated_random_tokens(config.vocab_size, config.half_len, batch=128, seed=3)
candidates = {
    "previous_token_head": [prev_head],
    "other_layer0_heads": [(0, h) for h in range(config.num_heads) if (0, h) != prev_head],
    "induction_heads": induction_heads,
}
others = [(induction_layer, h) for h in range(config.num_heads) if (induction_layer, h) not in induction_heads]
if others:  # a layer-1 head that is not an induction head
    candidates["other_layer1_heads"] = others
for name, heads in candidates.items():
    print(f"{name:20s} ablates {', '.join(f'L{a}H{b}' for a, b in heads)}")


def losses_without(heads):
    """(first-half, repeated-half) loss on the probe with `heads` mean-ablated."""
    fwd_hooks = head_ablation_hooks(model, heads, kind="mean", reference=reference) if heads else []
    with torch.no_grad():
        return half_losses(run_with_hooks(model, probe, fwd_hooks=fwd_hooks), probe)


clean_first, clean_repeated = losses_without([])
print(f"\nnothing ablated: first half {clean_first:.2f}, repeated half {clean_repeated:.2f}")

# %% [markdown]
# Before you run the next cell, decide: which of these ablations will push the
# repeated-half loss back up towards the first half's, i.e. **break in-context copying**?
# Return the set of names from `candidates` (for example `return {"other_layer0_heads"}`);
# it is a function so that instructor mode can fill it in. The cell then runs all the
# ablations and the check compares your prediction with what they measured (an ablation
# breaks copying when it gives back at least a quarter of the gap between the two halves).


# %%
@labs.exercise
def ablation_prediction():
    # your prediction here
    raise NotImplementedError


measured = {name: losses_without(heads)[1] for name, heads in candidates.items()}
check.ablation_prediction(ablation_prediction, measured, clean=clean_repeated, first_half=clean_first)

# %% [markdown]
# The expected answer is the circuit: the induction heads copy, and they can only find what
# to copy through the previous-token head. The other layer-0 head is not needed.
#
# One head at a time, every head: `loss_change_per_head` ablates each alone and measures
# the change of the whole sequence's loss. Removing *one* induction head hurts, but less than
# removing the previous-token head: the other induction head still copies (a backup).

# %%
change = loss_change_per_head(model, probe, kind="mean", reference=reference)
print(f"loss with nothing ablated: {change.base_loss:.3f}")
interp_figures.plot_head_matrix(
    change.values, title="change of the loss when one head is mean-ablated", label="loss change (nats)"
)

# %%
rows = [("none", [])] + [(f"L{a}H{b}", [(a, b)]) for a in range(config.num_layers) for b in range(config.num_heads)]
rows.append(("both layer-1 heads", [(1, 0), (1, 1)]))
print(f"{'ablated':20s} {'first half':>10s} {'repeated half':>14s}")
for name, heads in rows:
    first, repeated = losses_without(heads)
    print(f"{name:20s} {first:10.2f} {repeated:14.2f}")

# %% [markdown]
# ## 6. Activation patching: where does the answer's information flow?
#
# Ablation asks whether a component is *necessary*. Patching asks which activations carry
# the information that makes two inputs' answers differ. Take a repeated sequence that
# stops one token short, `[x, x[:-1]]`: the model should predict x's last token A. In the
# corrupted copy, the first half's last token is changed to B, so an induction model now
# predicts B. Run the corrupted input, paste in one activation from the clean run, and see
# how much of the clean answer comes back: the normalised logit difference
# (logit A − logit B) is 1 when the clean answer is fully restored, 0 when nothing changed.

# %%
N = config.half_len
x = repeated_random_tokens(config.vocab_size, N, batch=16, seed=4)[:, :N]  # (16, N) fresh segments
clean = torch.cat([x, x[:, :-1]], dim=1)  # (16, 2N - 1): the next token is x[:, -1] (A)
answer = x[:, -1]
wrong = (
    answer + 1 + torch.randint(0, config.vocab_size - 1, answer.shape, generator=torch.Generator().manual_seed(5))
) % config.vocab_size
corrupted = clean.clone()
corrupted[:, N - 1] = wrong  # B in place of A in the first half (never equal to A)
labels = [f"x{t}" for t in range(N)] + [f"x{t}'" for t in range(N - 1)]
labels[N - 1] += " (A/B)"

with torch.no_grad():
    for what, inputs in (("clean", clean), ("corrupted", corrupted)):
        top1 = model(inputs).logits[:, -1].argmax(-1)
        print(
            f"{what:9s}: predicts A on {(top1 == answer).float().mean():.0%}, B on {(top1 == wrong).float().mean():.0%}"
        )

residual = patch_residual(model, clean, corrupted, answer, wrong, labels=labels)
interp_figures.plot_patching(residual, title="patching the residual stream (layer x position)")

# %% [markdown]
# Read it row by row. Before layer 0 and before layer 1, only the changed position (A/B)
# matters: the information sits in that token's stream. In the last row ("final", the
# stream the unembedding reads) it has moved to the last position: layer 1 moved it. Which
# heads carry it? Patch each head's output in turn:

# %%
heads = patch_heads(model, clean, corrupted, answer, wrong)
interp_figures.plot_head_matrix(heads.values, title="patching each head's output", label="normalised logit difference")

# %% [markdown]
# The induction heads carry the answer. The previous-token head scores about 0, even though
# ablating it broke copying: what it writes at the A/B position ("my previous token was
# x14") is the *same* in both runs, because the corruption did not touch position 14.
# Patching finds the heads whose output depends on the difference between the inputs;
# ablation finds the heads the computation needs. A circuit needs both views.
#
# ## 7. The control: one layer cannot do it
#
# With one layer there is no previous-token head to compose with: the same training on a
# one-layer model leaves the repeated-half loss far above the two-layer model's (positions
# and token statistics help a little). In fast mode it trains only a few hundred steps.

# %%
control_config = InductionConfig(
    seed=0, num_layers=1, steps=labs.pick(normal=3000, fast=300), eval_every=labs.pick(normal=250, fast=100)
)
torch.manual_seed(control_config.seed)
control, control_result = train_induction(control_config)
print(
    f"1 layer: repeated-half loss {control_result.repeated_loss[-1]:.2f} after {control_result.trained_steps} steps "
    f"(first half {control_result.first_loss[-1]:.2f}); phase change: {control_result.phase_change_step}"
)
print(f"2 layers: repeated-half loss {result.repeated_loss[-1]:.2f} after {result.trained_steps} steps")

# %% [markdown]
# ## 8. Things to try
#
# - Other seeds (`InductionConfig(seed=1)`, ...): does the phase change come at the same
#   step? Are both layer-1 heads always induction heads? On seed 2 the loss drops but the
#   layer-1 prefix-matching score stays near 0, and the ablations still break copying: a
#   score is a hypothesis, the ablation is the test. Does your prediction still hold?
# - Zero and resample ablation (`kind="zero"`, `kind="resample"`) instead of the mean: which
#   heads look important now? Zero ablation puts the stream where training never saw it.
# - More heads (`num_heads=4`, `embed_dim=64`): how many previous-token and induction heads
#   form, and what does ablating one of them do?
# - Rotary positions (`positional="rotary"`): a relative position signal inside attention
#   rather than in the stream. Does a previous-token head still form? Why might
#   K-composition be harder to see?
# - `patch_heads(..., patch_position=N - 1)` patches the heads only at the changed
#   position; `attnlab.interp.direct_logit_attribution(model, clean[:1])` splits the answer's
#   logit into each head's direct contribution.
# - The command line runs the lab on five seeds with the one-layer control and writes tidy
#   CSVs and figures: `attnlab interp induction --out runs/induction --seeds 0,1,2,3,4 --control`.
