"""Interpretability: hook points, activation caches and causal experiments on attnlab's models.

    from attnlab.interp import run_with_cache, run_with_hooks, hook_names
    logits, cache = run_with_cache(model, ids)
    cache["blocks.0.attn.hook_pattern"]          # (B, H, T, T)

See docs/interpretability.md.
"""

from attnlab.interp.ablation import ABLATIONS, head_ablation_hooks, mlp_ablation_hooks, model_heads
from attnlab.interp.hooks import (
    ActivationCache,
    enable_hooks,
    hook_names,
    hooks,
    resolve_names,
    run_with_cache,
    run_with_hooks,
)

__all__ = [
    "ABLATIONS",
    "head_ablation_hooks",
    "mlp_ablation_hooks",
    "model_heads",
    "ActivationCache",
    "enable_hooks",
    "hook_names",
    "hooks",
    "resolve_names",
    "run_with_cache",
    "run_with_hooks",
]
