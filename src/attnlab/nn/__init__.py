"""PyTorch building blocks, one concept a file: attention, positions, layers, blocks."""

from attnlab.nn.attention import (
    KVCache,
    LayerKVCache,
    MultiHeadAttention,
    attention_naive,
    causal_mask,
    combine_masks,
    padding_mask,
    repeat_kv,
    scaled_dot_product_attention,
)
from attnlab.nn.block import BlockOutput, TransformerBlock
from attnlab.nn.layers import FeedForward, RMSNorm, SwiGLU, get_activation, layer_norm, make_norm
from attnlab.nn.positional import (
    FixedPositionalEncoding,
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    fourier_table,
    sinusoidal_table,
)

__all__ = [
    "KVCache",
    "LayerKVCache",
    "MultiHeadAttention",
    "attention_naive",
    "causal_mask",
    "combine_masks",
    "padding_mask",
    "repeat_kv",
    "scaled_dot_product_attention",
    "BlockOutput",
    "TransformerBlock",
    "FeedForward",
    "RMSNorm",
    "SwiGLU",
    "get_activation",
    "layer_norm",
    "make_norm",
    "FixedPositionalEncoding",
    "LearnedPositionalEmbedding",
    "RotaryEmbedding",
    "fourier_table",
    "sinusoidal_table",
]
