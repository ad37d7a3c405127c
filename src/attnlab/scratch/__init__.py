"""attnlab.scratch: a transformer in NumPy, with every backward pass written by hand.

No autograd and no torch: each layer caches what its backward pass needs in
`forward` and turns the gradient of the loss with respect to its output into the
gradients with respect to its input and parameters in `backward`. Together they
make `NumpyGPT`, which computes the same function as `attnlab.models.gpt.GPT` (or, from a
`LlamaConfig`, as `attnlab.models.llama.Llama`), shares its parameter names and checkpoint
format, and trains with the optimizers in `attnlab.scratch.optim` (the update rules of `torch.optim`).

Modules, bottom up:
    module.py      the `Module` base class (params, grads, train/eval, dotted names)
    layers.py      Linear, Embedding, LayerNorm, RMSNorm, ReLU/GELU/Tanh/SiLU, softmax,
                   Dropout, FeedForward, SwiGLU, CrossEntropyLoss
    positional.py  sinusoidal / Fourier tables, learned positions
    attention.py   scaled dot-product attention, multi-head (and grouped-query) self-attention, masks
    block.py       pre-norm and post-norm transformer blocks (LayerNorm + MLP, or RMSNorm + SwiGLU + GQA)
    gpt.py         NumpyGPT (GPT or LLaMA-style): forward, backward, generate, checkpoints
    optim.py       SGD, Adam, AdamW, clip_grad_norm
"""

from attnlab.scratch.attention import MultiHeadAttention, ScaledDotProductAttention, causal_mask, padding_mask
from attnlab.scratch.block import TransformerBlock
from attnlab.scratch.gpt import NumpyGPT, load_numpy_gpt
from attnlab.scratch.layers import (
    GELU,
    CrossEntropyLoss,
    Dropout,
    Embedding,
    FeedForward,
    LayerNorm,
    Linear,
    ReLU,
    RMSNorm,
    SiLU,
    SwiGLU,
    Tanh,
    softmax,
    softmax_backward,
)
from attnlab.scratch.module import Module
from attnlab.scratch.optim import SGD, Adam, AdamW, clip_grad_norm, global_grad_norm
from attnlab.scratch.positional import (
    FixedPositionalEncoding,
    LearnedPositionalEmbedding,
    fourier_table,
    sinusoidal_table,
)

__all__ = [
    "Module",
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
    "sinusoidal_table",
    "fourier_table",
    "FixedPositionalEncoding",
    "LearnedPositionalEmbedding",
    "causal_mask",
    "padding_mask",
    "ScaledDotProductAttention",
    "MultiHeadAttention",
    "TransformerBlock",
    "NumpyGPT",
    "load_numpy_gpt",
    "SGD",
    "Adam",
    "AdamW",
    "clip_grad_norm",
    "global_grad_norm",
]
