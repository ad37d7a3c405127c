# Source of notebooks/00_foundations.ipynb: edit this file, then run `python notebooks/_build.py`.

# %% [markdown]
# # Lab 0 — Foundations: vectors, regression, activations, optimizers
#
# A transformer is built from a handful of ideas that are older than it: vectors
# compared by dot products, linear maps fitted to data, non-linear activations, and
# gradient-based optimizers. This lab walks through each with `attnlab.foundations`,
# short NumPy functions that you can read and step through (and that the test suite
# checks against scikit-learn, SciPy and PyTorch).
#
# **Learning goals**
#
# 1. Compare vectors by dot product, cosine similarity and Euclidean distance, and know when they disagree.
# 2. Fit a linear model by least squares, and see what ridge (L2), lasso (L1) and the elastic net do to the weights.
# 3. Know the activations of transformers (ReLU, GELU, SiLU, ...) and their derivatives; write a stable softmax.
# 4. Watch gradient descent, momentum, Adam and AdamW on loss surfaces; see why transformers use AdamW with a warmup-cosine schedule.
#
# **How to use this notebook.** Run the cells top to bottom. Cells marked
# *Exercise* ask you to write a small function; the `check` call under it tells you
# whether it is right and, if not, gives a hint. Everything in this lab takes
# seconds, so fast mode (`ATTNLAB_FAST=1`, used by the test suite) changes nothing here.

# %%
# %matplotlib inline
import numpy as np

from attnlab.exercises import check, labs
from attnlab.foundations import activations, figures, optimizers, regression, surfaces, vectors

labs.setup(seed=0)
np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## 1. Vectors: dot product, cosine similarity, distance
#
# Attention scores are dot products between a query vector and key vectors, and
# embeddings are compared by cosine similarity. For two vectors $a, b$:
#
# $$a \cdot b = \sum_i a_i b_i, \qquad \cos(a, b) = \frac{a \cdot b}{\|a\|\,\|b\|}, \qquad d(a, b) = \|a - b\|.$$
#
# The dot product grows with the lengths of the vectors; the cosine only looks at
# their directions; the distance looks at where they end.

# %%
a = np.array([1.0, 2.0, 3.0])
b = np.array([2.0, 4.0, 6.0])  # same direction, twice as long
c = np.array([-1.0, 0.5, 0.0])
for name, other in [("b", b), ("c", c)]:
    print(
        f"a vs {name}: dot {vectors.dot(a, other):6.2f}   cosine {vectors.cosine_similarity(a, other):5.2f}   "
        f"distance {vectors.euclidean_distance(a, other):5.2f}"
    )

# %% [markdown]
# `a` and `b` point the same way (cosine 1) but lie far apart. Which of them is
# "nearest" to a query depends on the measure. The figure shows the nearest
# neighbours of one query by cosine and by distance, and a cosine-similarity matrix.

# %%
figures.figure_vectors()

# %% [markdown]
# ### Exercise 1: cosine similarity
#
# Write `cosine_similarity(a, b)` for two 1-D vectors (NumPy or PyTorch), returning one number.


# %%
@labs.exercise
def cosine_similarity(a, b):
    # your code here: a . b / (|a| |b|)
    raise NotImplementedError


check.cosine_similarity(cosine_similarity)

# %% [markdown]
# ## 2. Linear regression: least squares, ridge, lasso, elastic net
#
# A linear model predicts $\hat y = X w + b$. Least squares picks the $w$ that
# minimises $\|y - Xw - b\|^2$. With many or correlated features the solution
# becomes unstable, and we add a penalty on the weights:
#
# | method | objective (scikit-learn's) | effect on the weights |
# |---|---|---|
# | ridge | $\lVert y - Xw \rVert^2 + \alpha \lVert w \rVert^2$ | all shrink smoothly, none becomes 0 |
# | lasso | $\frac{1}{2N}\lVert y - Xw \rVert^2 + \alpha \lVert w \rVert_1$ | some become exactly 0 (feature selection) |
# | elastic net | lasso's + a share of ridge's penalty | sparse, but keeps groups of correlated features |
#
# Synthetic data with known true weights: 8 features, only the first 3 matter, and
# the features are correlated.

# %%
X, y, true_coef = regression.make_regression_data(
    n_samples=80, n_features=8, n_informative=3, noise=1.0, correlation=0.6, seed=0
)
fits = {
    "least squares (normal eq.)": regression.least_squares(X, y, method="normal"),
    "least squares (lstsq)": regression.least_squares(X, y, method="lstsq"),
    "ridge  alpha=10": regression.ridge(X, y, alpha=10.0),
    "lasso  alpha=0.3": regression.lasso(X, y, alpha=0.3),
    "elastic net alpha=0.3": regression.elastic_net(X, y, alpha=0.3, l1_ratio=0.5),
}
print(f"{'true weights':28s}", true_coef)
for name, fit in fits.items():
    print(f"{name:28s}", fit.coef, f"  zeros: {int(np.sum(fit.coef == 0))}")

# %% [markdown]
# Least squares spreads weight over the useless features; the lasso sets several
# of them to exactly zero. The figure follows every weight as the penalty grows
# (a *regularisation path*): ridge shrinks all weights together, the lasso drops
# them one by one.

# %%
figures.figure_regularization()

# %% [markdown]
# The same coefficients as scikit-learn (the tests check this to 1e-6; here one quick comparison):

# %%
from sklearn.linear_model import Lasso

ours = regression.lasso(X, y, alpha=0.3, tol=1e-12)
theirs = Lasso(alpha=0.3, tol=1e-12, max_iter=100_000).fit(X, y)
print("largest difference to scikit-learn:", np.max(np.abs(ours.coef - theirs.coef_)))

# %% [markdown]
# ## 3. Activations (and softmax)
#
# Without a non-linearity, a stack of linear layers is one linear layer. The
# transformer's feed-forward layer uses GELU (BERT, GPT-2) or ReLU (the original
# transformer); gates use sigmoid and SiLU. Their derivatives drive backpropagation.

# %%
figures.figure_activations()

# %%
x = np.linspace(-3, 3, 7)
print("x            ", x)
for name, (f, df) in activations.ACTIVATIONS.items():
    print(f"{name:10s} f  ", f(x))
    print(f"{'':10s} f' ", df(x))

# %% [markdown]
# The derivatives are written out by hand. Check one against central finite
# differences $\frac{f(x + h) - f(x - h)}{2h}$:

# %%
h = 1e-5
numeric = (activations.gelu(x + h) - activations.gelu(x - h)) / (2 * h)
print("GELU derivative, largest error vs finite differences:", np.max(np.abs(numeric - activations.gelu_derivative(x))))

# %% [markdown]
# ### Exercise 2: a stable softmax
#
# Softmax turns scores into probabilities: $\mathrm{softmax}(x)_i = e^{x_i} / \sum_j e^{x_j}$,
# over the **last axis**. Attention uses it on every row of scores. Write
# `softmax(x)` for arrays of any shape. Careful: `np.exp(1000)` is `inf`; subtracting
# each row's maximum first changes nothing mathematically and avoids the overflow.


# %%
@labs.exercise
def softmax(x):
    # your code here
    raise NotImplementedError


check.softmax(softmax)

# %% [markdown]
# `check` recognises typical mistakes. Here is what it says about a softmax
# that forgets the maximum (one of the wrong variants it knows):

# %%
result = check.softmax(check.mistake_function("softmax", "no_max_subtraction"))

# %% [markdown]
# ## 4. Optimizers: from gradient descent to AdamW
#
# Training follows the negative gradient. The update rules, as `attnlab.foundations.optimizers` writes them:
#
# | optimizer | update |
# |---|---|
# | gradient descent | $w \leftarrow w - \eta\, g$ |
# | momentum | $v \leftarrow \mu v + g,\; w \leftarrow w - \eta v$ |
# | Adam | $m \leftarrow \beta_1 m + (1-\beta_1) g,\; s \leftarrow \beta_2 s + (1-\beta_2) g^2,\; w \leftarrow w - \eta\, \hat m / (\sqrt{\hat s} + \epsilon)$ |
# | AdamW | Adam, plus $w \leftarrow w - \eta \lambda w$ (decoupled weight decay) |
#
# On an ill-conditioned valley plain gradient descent zig-zags; momentum and Adam
# go straight along it. Rosenbrock's curved valley is harder still.

# %%
figures.figure_optimizer_paths()

# %%
figures.figure_loss_curves()

# %% [markdown]
# **The largest stable step.** On a quadratic with curvatures $\lambda_{\min} \le \lambda_{\max}$,
# gradient descent converges only if $\eta < 2/\lambda_{\max}$. Here $\lambda_{\max} = 50$,
# so the limit is 0.04:

# %%
bowl = surfaces.quadratic(condition_number=50.0)
for lr in [0.01, 0.03, 0.039, 0.041, 0.05]:
    run = optimizers.run_on_surface(bowl, "gd", steps=200, lr=lr)
    verdict = "diverges" if run.diverged or run.losses[-1] > run.losses[0] else "converges"
    print(f"lr = {lr:<6} {verdict:10s} loss after {len(run.losses) - 1} steps: {run.losses[-1]:.2e}")

# %% [markdown]
# **Mini-batches.** SGD estimates the gradient from a few rows of data: cheap but
# noisy steps. The figure compares batch sizes on a least-squares problem.

# %%
figures.figure_minibatch_sgd()

# %% [markdown]
# **Why AdamW?** For SGD, an L2 penalty in the loss and "shrink the weights a little
# every step" are the same thing. For Adam they are not: Adam divides the L2
# gradient by the size of each weight's recent gradients, so weights with large
# gradients hardly decay. AdamW decays every weight at the same rate. Two weights
# with gradients of very different sizes:

# %%
demo = optimizers.weight_decay_demo()
print(f"after {len(demo.adamw) - 1} steps (both weights start at 1; gradient sizes {demo.gradient_scales}):")
for name in ["sgd_l2", "sgd_decoupled", "adam_l2", "adamw", "pure_decay"]:
    print(f"  {name:14s}", getattr(demo, name)[-1])

# %% [markdown]
# Transformers are trained with AdamW and a learning rate that warms up linearly,
# then decays along a cosine (the schedule `attnlab.train` uses):

# %%
figures.figure_lr_schedule()

# %% [markdown]
# ## Things to try
#
# - Raise `condition_number` in `surfaces.quadratic` and find the new largest stable learning rate (it is $2/\lambda_{\max}$).
# - Compare `regression.least_squares(X, y, method="normal")` and `method="lstsq"` with `correlation=0.999`; then try `ridge` with a small `alpha`.
# - Run `optimizers.run_on_surface(surfaces.least_squares_surface(X[:, :2], y), "sgd", batch_size=1, steps=300, lr=0.05)` and plot `run.points`.
# - In `optimizers.weight_decay_demo(gradient_scales=(1.0, 1.0))` the two weights get equal gradients: does Adam + L2 still differ from AdamW?
# - The figures can be written to files: `attnlab figures foundations --out figures/`.
