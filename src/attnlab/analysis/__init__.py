"""Analyses of what a trained transformer computes (hidden states, per layer).

from attnlab.analysis.hidden_states import hidden_state_stats, effective_rank
"""

from attnlab.analysis.hidden_states import (
    HiddenStateStats,
    collect_hidden_states,
    cosine_similarity_matrix,
    effective_rank,
    hidden_state_stats,
    mean_pairwise_cosine,
    token_norms,
)

__all__ = [
    "HiddenStateStats",
    "collect_hidden_states",
    "cosine_similarity_matrix",
    "effective_rank",
    "hidden_state_stats",
    "mean_pairwise_cosine",
    "token_norms",
]
