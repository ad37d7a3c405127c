"""Decoding: turning a model's next-token logits into sequences, for every model family.

  causal.py    causal language models (GPT, Llama, ...): greedy, temperature, top-k,
               top-p, KV cache (`generate`, `iter_generate`, `generate_text`);
  seq2seq.py   encoder-decoders: greedy decoding and beam search (`Seq2Seq.generate` calls it);
  protocol.py  what a model must offer to be decoded (`CausalLM`, `Seq2SeqLM`, `DecodingCache`).

The sampling settings and their defaults are the torch-free `attnlab.configs.sampling.
SamplingConfig`, shared with the NumPy GPT. The decoders know models only through the
protocols, so this package sits below `attnlab.models` in the layering (README,
"Design"): a model class may call its decoder, and no decoder imports a model.
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
from attnlab.decoding.protocol import CausalLM, DecodingCache, Seq2SeqLM
from attnlab.decoding.seq2seq import Generation, beam_search, greedy_decode

__all__ = [
    "DEFAULT_MAX_NEW_TOKENS",
    "DEFAULT_TEMPERATURE",
    "CausalLM",
    "DecodingCache",
    "Generation",
    "SamplingConfig",
    "Seq2SeqLM",
    "Step",
    "beam_search",
    "filter_logits",
    "generate",
    "generate_text",
    "greedy_decode",
    "iter_generate",
    "next_token_distribution",
    "prompt_ids",
]
