"""Text generation from a causal language model (greedy, temperature, top-k, top-p, KV cache).

A thin re-export kept for `from attnlab.generate import ...` (the README and the notebooks
use it). The code lives in `attnlab.decoding.causal`; the settings and their defaults in
`attnlab.configs.sampling`; encoder-decoder decoding (greedy, beam search) in
`attnlab.decoding.seq2seq`.
"""

from attnlab.configs.sampling import DEFAULT_MAX_NEW_TOKENS, DEFAULT_TEMPERATURE, SamplingConfig
from attnlab.decoding.causal import (
    Step,
    filter_logits,
    generate,
    generate_text,
    iter_generate,
    next_token_distribution,
    prompt_ids,
)

__all__ = [
    "DEFAULT_MAX_NEW_TOKENS",
    "DEFAULT_TEMPERATURE",
    "SamplingConfig",
    "Step",
    "filter_logits",
    "generate",
    "generate_text",
    "iter_generate",
    "next_token_distribution",
    "prompt_ids",
]
