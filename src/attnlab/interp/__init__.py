"""Interpretability: hook points, activation caches and causal experiments on attnlab's models.

    from attnlab.interp import run_with_cache, run_with_hooks, hook_names
    logits, cache = run_with_cache(model, ids)
    cache["blocks.0.attn.hook_pattern"]          # (B, H, T, T)

See docs/interpretability.md.
"""

from attnlab.interp.ablation import ABLATIONS, head_ablation_hooks, mlp_ablation_hooks, model_heads
from attnlab.interp.attribution import (
    HeadLossChange,
    LogitAttribution,
    direct_logit_attribution,
    lm_loss,
    loss_change_per_head,
)
from attnlab.interp.heads import HEAD_SCORES, HeadScores, head_scores, pattern_scores, repeated_random_tokens
from attnlab.interp.hooks import (
    ActivationCache,
    enable_hooks,
    hook_names,
    hooks,
    resolve_names,
    run_with_cache,
    run_with_hooks,
)
from attnlab.interp.induction import InductionConfig, InductionResult, run_induction_lab, train_induction
from attnlab.interp.patching import (
    PatchingResult,
    logit_diff,
    normalised_metric,
    patch_attn_out,
    patch_heads,
    patch_mlp_out,
    patch_residual,
)

__all__ = [
    "InductionConfig",
    "InductionResult",
    "run_induction_lab",
    "train_induction",
    "HeadLossChange",
    "LogitAttribution",
    "direct_logit_attribution",
    "lm_loss",
    "loss_change_per_head",
    "PatchingResult",
    "logit_diff",
    "normalised_metric",
    "patch_attn_out",
    "patch_heads",
    "patch_mlp_out",
    "patch_residual",
    "HEAD_SCORES",
    "HeadScores",
    "head_scores",
    "pattern_scores",
    "repeated_random_tokens",
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
