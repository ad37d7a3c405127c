# Source of notebooks/04_bio_probing.ipynb: edit this file, then run `python notebooks/_build.py`.
# requires: modlamp

# %% [markdown]
# # Lab 4 — Biological sequences and probing
#
# Proteins are sentences over a 20-letter alphabet. A **protein language model** (PLM)
# is an encoder trained like BERT: hide 15% of the residues and predict them from both
# sides (ESM-2, Lin et al. 2023). Nobody tells it about function or structure; whatever
# it learns comes from the sequences alone. To find out *what* it learned, we **probe**
# it: freeze the model, embed labelled sequences, and train a small classifier (the
# probe) on the embeddings (Alain & Bengio 2016; Rives et al. 2021).
#
# A probe result means little on its own. The question is always: does the language
# model beat **controls** that need no language model at all — one-hot residues,
# amino-acid composition, and a transformer of the same shape whose weights were
# never trained (Hewitt & Liang 2019)? This lab runs that comparison end to end on
# antimicrobial peptides (AMPs), the way the Protify benchmarks do.
#
# **Learning goals**
#
# - Load, de-duplicate and split a labelled sequence set honestly (no copies across splits).
# - Tokenize proteins with the ESM-2 alphabet; pretrain attnlab's own small PLM with masked-LM.
# - Pool per-residue embeddings into one vector per sequence (your exercise) and look at them with PCA.
# - Train linear and MLP probes over several seeds and compare the PLM with its controls (mean ± std).
# - See what a *transformer probe* adds: context, which per-residue probes cannot see.
#
# References: Lin et al. (2023), *ESM-2*; Rives et al. (2021); Elnaggar et al. (2021),
# *ProtTrans*; Hewitt & Liang (2019), *control tasks*; Müller et al. (2017), *modlAMP*.

# %%
# %matplotlib inline
import numpy as np
import torch
from IPython.display import display

from attnlab.bio.cache import EmbeddingCache
from attnlab.bio.controls import one_hot
from attnlab.bio.data import load_amp
from attnlab.bio.embedder_base import compute_embeddings
from attnlab.bio.embedders import make_embedder
from attnlab.bio.figures import plot_pca
from attnlab.bio.probes import ProbeConfig, fit_probe
from attnlab.bio.tokenizers import ProteinTokenizer
from attnlab.bio.workflow import ProbeRunConfig, comparison_table, encode_splits, prepare_dataset, run_probe_experiment
from attnlab.exercises import check, labs, solutions
from attnlab.models.encoder import EncoderConfig
from attnlab.train.mlm import MaskingConfig, train_masked_lm
from attnlab.train.recipes import DataConfig
from attnlab.train.trainer import TrainConfig

labs.setup(seed=0)
run_dir = labs.new_run_dir("04_bio")
cache = EmbeddingCache(run_dir / "embedding-cache")  # embeddings of this lab stay in its run folder

# %% [markdown]
# ## 1. The data: antimicrobial peptides vs random UniProt peptides
#
# The `modlamp` package ships 2,600 AMPs from the APD3 database and 2,600 random
# UniProt peptides of length 10–50. Real data sets have **duplicates**: here 558 rows
# repeat a sequence, and 22 sequences carry *both* labels. `load_amp()` collapses the
# copies and drops the contradictory ones; if we split first, copies of a test peptide
# would sit in the training set and inflate every score.

# %%
raw = load_amp(dedup=False)
amp = load_amp()
print(f"{len(raw)} rows -> {len(amp)} distinct, unambiguous sequences")
print(amp.describe())

# %% [markdown]
# The classes differ in length (AMPs median 29, UniProt median 37), which already
# hints that simple features will be strong. `prepare_dataset` draws a stratified
# 80/10/10 split (every class keeps its share), the one all probes below use.

# %%
dataset = prepare_dataset(amp, "seq-class", max_sequences=labs.pick(normal=None, fast=600), split_seed=0)
label_encoder, parts, y, masks = encode_splits(dataset)
print({s: len(p) for s, p in parts.items()}, "classes:", label_encoder.classes, dataset.label_names)
lengths = {
    name: [len(s) for s, label in zip(dataset.sequences, dataset.labels) if label == k]
    for k, name in dataset.label_names.items()
}
print({name: int(np.median(v)) for name, v in lengths.items()}, "median length per class")

# %% [markdown]
# ## 2. Tokens: the ESM-2 alphabet
#
# `ProteinTokenizer` uses exactly ESM-2's 33 ids, so real ESM-2 weights would read
# our ids unchanged: `<cls>` starts a sequence, `<eos>` ends it, the 20 amino acids are
# ordered by frequency (L A G V …), rare letters (X B U Z O) have their own ids, and
# `<mask>` is 32. Letters outside the alphabet are an error, never silently `<unk>`.

# %%
tokenizer = ProteinTokenizer()
peptide = dataset.sequences[0]
ids = tokenizer.encode_with_specials(peptide)
print(peptide)
print(ids)
print(tokenizer.token_strings(ids)[:8], "...")
try:
    tokenizer.encode("MKT*J")
except Exception as error:  # InvalidLettersError names the letters and how to fix them
    print(type(error).__name__ + ":", error)

# %% [markdown]
# ## 3. Pretrain a small protein language model
#
# attnlab's PLM is an `Encoder` in ESM-2's layout (pre-norm blocks, rotary positions,
# a final LayerNorm): the `protein-small` preset, 4 layers of width 128 (0.8 M
# parameters). Masked-LM training hides 15% of the residues (80% become `<mask>`,
# 10% a random residue, 10% stay) and scores the model on those only.
#
# We pretrain on the **train split's sequences only** (their labels are not used),
# validated on the valid split, for about a minute and a half. The benchmark
# (`benchmarks/bench_bio.py`) trains for 9 minutes; real PLMs train for weeks on
# millions of proteins, so expect a modest model.
#
# **A pre-trained PLM.** When the instructor's kit is installed (`attnlab room install`),
# this cell uses the kit's PLM instead: the same model, data and split, pretrained by
# `attnlab room build` for up to 2,400 steps (the benchmark's recipe, 9-15 minutes on 2 cores)
# instead of 90 seconds. Set `ATTNLAB_TRAIN=1` to train your own anyway. Section 6 shows
# why the difference matters.

# %%
from attnlab import pretrained

pretrain_split = [s if s != "test" else None for s in dataset.splits]
fasta = run_dir / "pretrain.fasta"
fasta.parent.mkdir(parents=True, exist_ok=True)
fasta.write_text(
    "".join(f">{i} split={s}\n{q}\n" for i, q, s in zip(dataset.ids, dataset.sequences, pretrain_split) if s)
)
plm_dir = run_dir / "plm"
kit_plm = pretrained.use("plm")  # None: no kit installed (or ATTNLAB_TRAIN=1)
if kit_plm is not None:
    print(pretrained.describe("plm", "PLM"))
    pretraining = pretrained.copy_to("plm", plm_dir)["results"]
else:
    pretraining = train_masked_lm(
        plm_dir,
        data=DataConfig(source=str(fasta), tokenizer="protein"),
        model=EncoderConfig.from_name("protein-small", max_seq_len=64),
        train=TrainConfig(
            batch_size=64,
            lr=2e-3,
            min_lr=2e-4,
            warmup_iters=labs.pick(normal=50, fast=5),
            max_iters=labs.pick(normal=600, fast=10),
            max_time=labs.pick(normal=90, fast=10),
            eval_interval=labs.pick(normal=200, fast=10),
            eval_iters=3,
            device="cpu",
            seed=0,
        ),
        masking=MaskingConfig(mask_prob=0.15),
    )
print(
    f"{pretraining['step']} steps, validation loss {pretraining['val_loss']:.3f}, "
    f"masked-token accuracy {pretraining['val_masked_accuracy']:.1%} (guessing the commonest residue: about 9%)"
)

# %% [markdown]
# ## 4. From residues to one vector per sequence
#
# The PLM gives one vector per token: `(B, T, C)` for a padded batch. A sequence-level
# probe needs one vector per sequence. ESM and ProtTrans average the **residue**
# vectors: `<cls>`, `<eos>` and padding are left out.
#
# ### Exercise: mean pooling
#
# Write `mean_pooling(hidden, attention_mask)`: `hidden` is `(B, T, C)`, the mask is
# `(B, T)` with 1 where a position counts (here: a residue) and 0 elsewhere; return the
# `(B, C)` mean over the positions that count.


# %%
@labs.exercise
def mean_pooling(hidden, attention_mask):
    # your code here
    raise NotImplementedError


check.mean_pooling(mean_pooling)

# %% [markdown]
# The same pooling by hand on a real batch, against the library's embedder (which also
# handles sequences longer than the model's context with overlapping windows):

# %%
plm = make_embedder(plm_dir, progress=False)
model = plm.model
batch = tokenizer.encode_batch(parts["test"].sequences[:4])
with torch.no_grad():
    hidden = model.encode(batch.input_ids, batch.attention_mask)  # (B, T, C)
by_hand = solutions.mean_pooling(hidden.numpy(), batch.residue_mask.numpy())  # residues only
library = plm.embed(parts["test"].sequences[:4], "mean")
print("hidden states", tuple(hidden.shape), "-> pooled", by_hand.shape)
print("largest difference, by hand vs make_embedder(...).embed:", float(np.abs(by_hand - library).max()))

# %% [markdown]
# ## 5. Embeddings and controls, side by side
#
# Four embedders, all through `make_embedder`, all cached on disk (keyed by the
# embedder's identity, which includes a hash of its weights, and by the sequences):
#
# | name | what it is | size |
# |---|---|---|
# | PLM | our pretrained model, mean of the residue vectors | 128 |
# | one-hot | mean of one-hot residues = residue fractions | 21 |
# | composition | residue fractions + the length | 22 |
# | random | the PLM's exact architecture, fresh random weights (seed 0) | 128 |

# %%
embedders = {
    "PLM": plm,
    "one-hot": make_embedder("onehot"),
    "composition": make_embedder("composition"),
    "random": make_embedder("random", random_like=plm_dir, progress=False),
}
test_vectors = {
    name: compute_embeddings(e, parts["test"].sequences, "mean", cache=cache) for name, e in embedders.items()
}
again = compute_embeddings(plm, parts["test"].sequences, "mean", cache=cache)
print({name: v.shape for name, v in test_vectors.items()}, f"cache: {cache.hits} hit(s), {cache.misses} miss(es)")

# %% [markdown]
# PCA shows the two directions along which each embedding varies most (features
# z-scored first). Separation here is a hint, not a verdict: a probe may use
# directions of small variance.

# %%
names = [dataset.label_names[c] for c in label_encoder.classes]
for name in ("PLM", "random", "composition"):
    display(plot_pca(test_vectors[name], y["test"], class_names=names, title=f"Test peptides: {name}"))

# %% [markdown]
# ## 6. Probes over seeds: does the PLM beat its controls?
#
# `run_probe_experiment` is the code behind `attnlab probe`: it embeds every split
# (through the cache), trains a probe per seed on train with early stopping on valid,
# scores it on test, and reports mean ± std. MCC (Matthews correlation) is the headline:
# it is 0 for guessing and 1 for perfect, whatever the class balance.

# %%
settings = ProbeConfig(max_epochs=labs.pick(normal=50, fast=5), patience=labs.pick(normal=6, fast=3))
results = {}
for name, embedder in embedders.items():
    config = ProbeRunConfig(
        data="amp",
        task="seq-class",
        embedder=name,
        probe="mlp",
        pool="mean",
        seeds=labs.pick(normal=3, fast=1),
        out=str(run_dir / f"probe-{name}"),
        progress=False,
        cache_dir=str(cache.root),
        probe_config=settings,
    )
    results[name] = run_probe_experiment(config, embedder=embedder, dataset=dataset)
print(comparison_table(list(results.values()), labels=list(results)))
mcc = {name: r["summary"]["mcc"]["mean"] for name, r in results.items()}
best_control = max((n for n in mcc if n != "PLM"), key=mcc.get)
gap = mcc["PLM"] - mcc[best_control]
pretrained_steps = pretraining["step"]
if gap > 0:
    print(
        f"The PLM ({pretrained_steps:,} pretraining steps) beats every control: MCC {mcc['PLM']:.3f} against "
        f"{mcc[best_control]:.3f} for {best_control}, the best of them (+{gap:.3f})."
    )
else:
    print(
        f"The PLM ({pretrained_steps:,} pretraining steps) does NOT beat its controls: MCC {mcc['PLM']:.3f} against "
        f"{mcc[best_control]:.3f} for {best_control} ({gap:+.3f}). So few steps on so few sequences teach it little "
        "beyond which residues a peptide is made of, which composition gives directly."
    )

# %% [markdown]
# Read the table row by row: the random transformer tells you how much comes from the
# architecture alone (mixing residues), composition how much from counting letters and
# the length. Only the gap between the PLM and the best control is what pretraining
# learned, and the sentence under the table says which way it went in *this* run.
#
# **A 90-second PLM loses.** Pretrained here for 90 seconds (at most 600 steps on the
# train split's peptides), the PLM usually does not beat composition + length: one 2-core
# run of this notebook gave MCC 0.71 against 0.77, with the random-weights transformer
# about as good as the PLM. In so few steps a masked LM learns little more than which
# residues are common, and composition hands that to the probe directly, with the length
# on top. Pretrained longer it wins: the 9-minute PLM of `benchmarks/bench_bio.py` reached
# MLP-probe MCC 0.80 against 0.77 for composition and 0.76 for random weights
# (`benchmarks/RESULTS.md`); the kit's PLM from `attnlab room build` uses that recipe.
#
# Each run also wrote `results.json`, `results.md`, a confusion matrix, a PCA figure
# and the probes themselves (which `attnlab app` can load):

# %%
print(sorted(p.name for p in (run_dir / "probe-PLM").iterdir()))
print((run_dir / "probe-PLM" / "results.md").read_text())

# %% [markdown]
# ## 7. Context: what a transformer probe adds
#
# Linear and MLP probes read each residue's vector on its own. A **transformer probe**
# lets the residues of a sequence attend to each other first. A toy per-residue task
# makes the difference visible: the label of a residue is 1 when the *previous* residue
# is lysine (K). One-hot vectors carry no information about the neighbour, so a linear
# probe on them must fail; the transformer probe reads the neighbour.

# %%
rng = np.random.default_rng(0)
toy = ["".join(rng.choice(list("KKKLAGVSER"), rng.integers(10, 25))) for _ in range(labs.pick(normal=120, fast=60))]
X = [one_hot(s) for s in toy]
labels = [np.array([int(j > 0 and s[j - 1] == "K") for j in range(len(s))]) for s in toy]
train, valid = slice(0, len(toy) * 3 // 4), slice(len(toy) * 3 // 4, None)
quick = ProbeConfig(
    max_epochs=labs.pick(normal=80, fast=25),
    patience=10,
    learning_rate=3e-3,
    transformer_dim=32,
    transformer_layers=1,
    transformer_heads=2,
)
for kind in ("linear", "transformer"):
    probe = fit_probe(kind, X[train], labels[train], X[valid], labels[valid], "residue", seed=0, config=quick)
    print(
        f"{kind:12s} per-residue accuracy on held-out sequences: {probe.evaluate(X[valid], labels[valid])['accuracy']:.3f}"
    )
print(f"share of label 0 (always guessing 0): {1 - np.concatenate(labels[valid]).mean():.3f}")

# %% [markdown]
# The same comparison on real secondary structure (FLIP's 3-state labels, one class
# per residue) is in `benchmarks/bench_bio.py`; the data file is not shipped with
# attnlab. There the transformer probe gives the one-hot control context too, which
# makes it a much harder control to beat.
#
# ## 8. The same from the command line
#
# ```
# attnlab train --objective mlm --data amp --tokenizer protein --out runs/amp-plm        # pretrain (minutes)
# attnlab probe --data amp --task seq-class --embedder runs/amp-plm --probe mlp --seeds 3 --out runs/probe-plm
# attnlab probe --data amp --task seq-class --embedder onehot --probe mlp --seeds 3 --out runs/probe-onehot
# attnlab probe --data amp --task seq-class --embedder random:runs/amp-plm --pool attn --out runs/probe-random
# attnlab probe --data ss3.csv --task residue-class --embedder runs/amp-plm --probe transformer --out runs/ss3
# attnlab probe ... --finetune          # train the PLM together with a linear head
# ```
#
# (`attnlab train ... --data amp` pretrains on all AMP sequences; for a fair benchmark
# pretrain on the training split only, as this lab does.)
#
# ## Things to try
#
# - Pretrain longer (`max_time=300`) and re-run section 6: does the gap to the controls grow?
# - Probe an earlier layer: `make_embedder(plm_dir, layer=2)`.
# - Use `pool="max"`, `pool="cls"` or `pool="attn"` (learned attention pooling) in section 6.
# - Swap the MLP for `probe="linear"`: which embedders need a non-linear read-out?
# - Try `finetune=True` in a `ProbeRunConfig` for the PLM: how much does updating the language model help?
