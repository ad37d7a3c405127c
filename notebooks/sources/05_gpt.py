# Source of notebooks/05_gpt.ipynb: edit this file, then run `python notebooks/_build.py`.

# %% [markdown]
# # Lab 5 — Build and train a GPT, then generate
#
# A GPT is a stack of the blocks from lab 2 with a **causal** mask (lab 1): every
# position predicts the next token from the tokens before it. In this lab you
# build one, train it for a couple of minutes on a CPU, make it write text at
# different temperatures, and look at its attention. At the end the NumPy engine,
# with its hand-written backward pass, trains the very same model.
#
# **Learning goals**
#
# - Turn text into training examples (input = tokens, target = the same tokens shifted by one) and know why the first loss is about $\ln V$.
# - Write the cross-entropy loss; train a GPT with AdamW and a warmup-cosine schedule using `attnlab.train`.
# - Generate text with greedy decoding, temperature, top-k and top-p sampling, and explain what temperature does to the next-token distribution.
# - Find attention heads that look at the previous token.
#
# The model follows GPT-2 (Radford et al. 2019) in nanoGPT's layout: token and
# position embeddings, pre-norm blocks, a final LayerNorm, and an output layer that
# shares its weights with the token embedding.
#
# **Time.** Training runs about two minutes on 2 CPU cores; with `ATTNLAB_FAST=1` it
# runs a few dozen steps (the text it writes is then mostly noise).

# %%
# %matplotlib inline
import numpy as np
import torch

from attnlab.data.text import LMData, load_text
from attnlab.exercises import check, labs, solutions
from attnlab.generate import SamplingConfig, generate, generate_text, next_token_distribution
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.models.registry import load_model
from attnlab.tokenizers import CharTokenizer
from attnlab.train.recipes import DataConfig, train_language_model
from attnlab.train.trainer import TrainConfig, read_metrics
from attnlab.viz import attention as attention_plots
from attnlab.viz import curves
from attnlab.viz.models import attention_for_text

labs.setup(seed=0)

# %% [markdown]
# ## 1. Data: characters in, next characters out
#
# The corpus ships with Python itself: the documentation topics of `pydoc` (about
# 465 KB of English text and code). A character tokenizer gives every distinct
# character an id.

# %%
corpus = load_text("pydoc")
tokenizer = CharTokenizer.train(corpus.text)
ids = np.asarray(tokenizer.encode(corpus.text))
print(f"{corpus.name}: {len(corpus.text):,} characters, vocabulary of {tokenizer.vocab_size} characters")
print(repr(corpus.text[:300]))
print("encode('def f(x):') =", tokenizer.encode("def f(x):"))

# %% [markdown]
# A training example is a window of `max_seq_len` tokens and, as targets, the same
# window shifted by one: at every position the model learns to predict the next character.

# %%
config = GPTConfig.from_name("baby", vocab_size=tokenizer.vocab_size)
data = LMData(ids, seq_len=config.max_seq_len)  # 90% train, 10% validation (the end of the text)
batch = data.train_batch(batch_size=4, rng=np.random.default_rng(0))
print("input :", repr(tokenizer.decode(batch["input_ids"][0][:40])))
print("target:", repr(tokenizer.decode(batch["targets"][0][:40])))
print(config)

# %% [markdown]
# ## 2. The model, untrained
#
# `GPT(config)` is one readable file (`attnlab/models/gpt.py`). Before training,
# its predictions are close to uniform over the V characters, so the loss should be
# close to $-\ln(1/V) = \ln V$.

# %%
torch.manual_seed(0)
model = GPT(config)
print(f"{model.num_parameters():,} parameters")
inputs, targets = torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["targets"])
out = model(inputs, targets)
print("logits:", tuple(out.logits.shape), "(B, T, V)")
print(f"loss {out.loss.item():.3f}   ln V = {np.log(tokenizer.vocab_size):.3f}")

# %% [markdown]
# ### Exercise 1: cross-entropy
#
# The loss is the mean over positions of $-\log \mathrm{softmax}(\text{logits})[\text{target}]$.
# Write `cross_entropy(logits, targets)` for logits `(N, V)` and integer targets `(N,)`.
# Use the log-sum-exp trick so that large logits do not overflow.


# %%
@labs.exercise
def cross_entropy(logits, targets):
    # your code here
    raise NotImplementedError


check.cross_entropy(cross_entropy)

# %% [markdown]
# The model's loss is exactly this, over all B × T positions:

# %%
flat_logits = out.logits.detach().reshape(-1, tokenizer.vocab_size).double().numpy()  # (B*T, V)
print(
    f"reference solution {solutions.cross_entropy(flat_logits, batch['targets'].reshape(-1)):.5f}   model {out.loss.item():.5f}"
)

# %% [markdown]
# **Causality.** Changing a later token never changes the predictions at earlier
# positions, thanks to the causal mask:

# %%
changed = inputs.clone()
changed[:, 40] = (changed[:, 40] + 1) % tokenizer.vocab_size  # change position 40
with torch.no_grad():
    before, after = model(inputs).logits, model(changed).logits
print("largest change at positions 0..39:", float((before[:, :40] - after[:, :40]).abs().max()))
print("largest change at positions 40..63:", float((before[:, 40:] - after[:, 40:]).abs().max()))

# %% [markdown]
# ## 3. Train it
#
# `attnlab.train.recipes.train_language_model` is what `attnlab train` runs: it
# builds the tokenizer and the model, and the `Trainer` runs AdamW with a linear
# warmup and a cosine decay of the learning rate, evaluates on the validation split,
# and writes a checkpoint folder (config, safetensors weights, tokenizer, metrics).
#
# With the instructor's kit installed (`attnlab room install`), the cell uses the kit's
# model instead, trained by `attnlab room build` with exactly these settings, and says so;
# set `ATTNLAB_TRAIN=1` to train your own anyway.

# %%
from attnlab import pretrained

run_dir = labs.new_run_dir("05_gpt")
train_config = TrainConfig(
    max_iters=labs.pick(normal=2000, fast=40),  # optimizer steps: ~2 minutes on 2 CPU cores in normal mode
    batch_size=12,
    lr=1e-3,
    warmup_iters=labs.pick(normal=100, fast=5),
    eval_interval=labs.pick(normal=250, fast=20),
    eval_iters=labs.pick(normal=20, fast=2),
    log_interval=labs.pick(normal=10, fast=5),
    max_time=180,  # a guard for slow machines: stop (and save) after 3 minutes whatever the step
    device="cpu",
)
if pretrained.use("gpt-05") is not None:
    print(pretrained.describe("gpt-05", "GPT"))
    results = pretrained.copy_to("gpt-05", run_dir)["results"]
else:
    results = train_language_model(
        run_dir, data=DataConfig(source="pydoc", tokenizer="char"), model=config, train=train_config
    )
print(f"run folder: {run_dir}")
print(
    f"validation loss {results['val_loss']:.3f} (perplexity {results['val_perplexity']:.2f}) "
    f"after {results['step']} steps, {results['train_seconds']:.0f} s, {results['tokens_per_sec']:,.0f} tokens/s"
)

# %%
curves.plot_loss_curves({"baby GPT": read_metrics(run_dir)}, title="Training the baby GPT on pydoc")

# %% [markdown]
# ## 4. Generate
#
# Generation repeats: run the model on the text so far, turn the last position's
# logits into a distribution, pick a token, append it. The **temperature** $\tau$
# divides the logits before the softmax: $\tau < 1$ sharpens the distribution
# (safer, more repetitive), $\tau > 1$ flattens it (more varied, more mistakes),
# and $\tau = 0$ means greedy decoding (always the most likely token).

# %%
trained, trained_tokenizer = load_model(run_dir, expect="gpt")  # the checkpoint, in eval mode
prompt = "The list "
with torch.no_grad():
    logits = trained(torch.tensor([trained_tokenizer.encode(prompt)])).logits[:, -1]  # (1, V)
for temperature in [0.5, 1.0, 2.0]:
    probs = next_token_distribution(logits, SamplingConfig(temperature=temperature))[0]
    top = torch.topk(probs, 5)
    shown = "  ".join(f"{trained_tokenizer.decode([int(i)])!r} {p:.2f}" for p, i in zip(top.values, top.indices))
    print(f"temperature {temperature}: next character after {prompt!r}: {shown}")

# %%
new_tokens = labs.pick(normal=240, fast=60)
for temperature in [0.0, 0.5, 1.0, 1.5]:
    text = generate_text(
        trained, trained_tokenizer, prompt, SamplingConfig(max_new_tokens=new_tokens, temperature=temperature, seed=0)
    )
    print(f"=== temperature {temperature} ===\n{text}\n")

# %% [markdown]
# Top-k keeps only the k most likely tokens, top-p (nucleus sampling) the smallest
# set whose probabilities add up to p; both cut off the unlikely tail that makes
# high-temperature text fall apart.

# %%
for name, sampling in [
    ("top-k 5", SamplingConfig(max_new_tokens=new_tokens, temperature=1.2, top_k=5, seed=0)),
    ("top-p 0.9", SamplingConfig(max_new_tokens=new_tokens, temperature=1.2, top_p=0.9, seed=0)),
]:
    print(f"=== temperature 1.2, {name} ===\n{generate_text(trained, trained_tokenizer, prompt, sampling)}\n")

# %% [markdown]
# The **KV cache** keeps the keys and values of earlier positions, so each step only
# processes the newest token. It changes the speed, never the result:

# %%
start = torch.tensor([trained_tokenizer.encode(prompt)])
greedy = dict(max_new_tokens=50, temperature=0.0)
with_cache = generate(trained, start, SamplingConfig(**greedy, use_cache=True))
without_cache = generate(trained, start, SamplingConfig(**greedy, use_cache=False))
print("same tokens with and without the cache:", torch.equal(with_cache, without_cache))

# %% [markdown]
# ## 5. Look at the attention
#
# Every layer and head on a piece of text (rows: queries, columns: keys). The upper
# triangle is empty: the causal mask.

# %%
sample_text = "def f(x):\n    return x + 1"
labels, weights = attention_for_text(trained, trained_tokenizer, sample_text)  # (L, H, T, T)
attention_plots.plot_attention_grid(weights, labels, title="Attention of the trained GPT, every layer and head")

# %% [markdown]
# Language models often learn **previous-token heads**: heads that put much of
# their weight on the token just before the query (useful for spelling out words
# character by character). Measure it for every head, as the mean weight on the
# diagonal just below the main one, and compare with a head that spreads its
# attention evenly over the visible tokens:

# %%
T_text = len(labels)
previous = weights[:, :, np.arange(1, T_text), np.arange(T_text - 1)].mean(axis=-1)  # (L, H)
uniform = np.mean(1.0 / np.arange(2, T_text + 1))  # query i sees i + 1 keys
print(
    f"mean attention to the previous token (rows: layers, columns: heads); uniform attention would give {uniform:.2f}:"
)
print(np.array2string(previous, precision=2))
layer, head = np.unravel_index(np.argmax(previous), previous.shape)
attention_plots.plot_attention_head(
    weights[layer, head],
    labels,
    title=f"Layer {layer}, head {head}: attention to the previous token {previous[layer, head]:.2f}",
)

# %% [markdown]
# ## 6. The NumPy engine trains the same model
#
# `attnlab.scratch.NumpyGPT` is the same GPT written in NumPy with every backward
# pass by hand (lab 1 showed attention's). It has the same parameter names, so it
# can start from the PyTorch model's weights. Give both engines the same batches
# and the same AdamW settings and they follow the same path, up to float32 rounding.

# %%
from attnlab.scratch import NumpyGPT
from attnlab.train.engine import TorchEngine
from attnlab.train.numpy_engine import NumpyEngine

torch.manual_seed(1)
torch_model = GPT(config)
numpy_model = NumpyGPT(config)
numpy_model.load_state_dict({name: p.detach().numpy() for name, p in torch_model.state_dict().items()})

logits_numpy, loss_numpy = numpy_model.forward(batch["input_ids"], batch["targets"])
with torch.no_grad():
    torch_out = torch_model(inputs, targets)
print(
    f"largest logit difference {np.abs(logits_numpy - torch_out.logits.numpy()).max():.1e}; "
    f"loss NumPy {loss_numpy:.6f} vs PyTorch {torch_out.loss.item():.6f}"
)

# %%
steps = labs.pick(normal=30, fast=5)
schedule = TrainConfig(max_iters=steps, warmup_iters=0, lr=1e-3)
torch_engine = TorchEngine(torch_model, lr=schedule.lr, device="cpu", distributed=False)
numpy_engine = NumpyEngine(numpy_model, lr=schedule.lr)
rng = np.random.default_rng(0)
records = {"PyTorch": [], "NumPy": []}
print(f"{'step':>4} {'PyTorch loss':>13} {'NumPy loss':>11}")
for step in range(steps):
    batches = [data.train_batch(12, rng)]
    lr = schedule.lr_at(step)
    loss_t, _ = torch_engine.train_step(batches, lr)
    loss_n, _ = numpy_engine.train_step(batches, lr)
    records["PyTorch"].append({"step": step, "train_loss": loss_t})
    records["NumPy"].append({"step": step, "train_loss": loss_n})
    if step % 5 == 0 or step == steps - 1:
        print(f"{step:>4} {loss_t:>13.5f} {loss_n:>11.5f}")

# %%
curves.plot_loss_curves(records, title="Same model, same batches: PyTorch vs the NumPy engine")

# %% [markdown]
# The same run from the command line (`--engine numpy` trains with the NumPy engine):
#
# ```
# attnlab train --data pydoc --preset baby --out runs/baby
# attnlab generate --checkpoint runs/baby --prompt "The list " --temperature 0.8
# attnlab train --data pydoc --preset baby --engine numpy --out runs/baby-numpy
# ```
#
# ## Things to try
#
# - Train longer (`max_iters=3000`) or with nanoGPT's learned position table, `GPTConfig.from_name("baby", positional="learned", ...)`, and compare the loss curves with `curves.plot_loss_curves({...})`.
# - Use a BPE tokenizer: `DataConfig(source="pydoc", tokenizer="bpe", vocab_size=512)`; what happens to the loss and to the samples?
# - Find the temperature at which the samples stop looking like words.
# - Plot the attention of a head that is *not* a previous-token head: what does it look at?
# - Write `cross_entropy` with `torch.logsumexp` instead of NumPy; `check.cross_entropy` accepts both.
