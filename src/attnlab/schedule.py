"""Learning-rate schedule shared by both engines: linear warmup, then cosine decay.

Follows the schedule of nanoGPT / GPT-3 (Brown et al., 2020, sec. B): the rate rises
linearly for `warmup_iters` steps, then follows half a cosine from `max_lr` down to
`min_lr` at `decay_iters`, and stays at `min_lr` after that. Pure Python, so the
NumPy engine and the PyTorch trainer use the very same numbers.
"""

from __future__ import annotations

import math


def warmup_cosine_lr(step: int, *, max_lr: float, min_lr: float, warmup_iters: int, decay_iters: int) -> float:
    """Learning rate at optimizer step `step` (0-based).

    Args:
        step: the step about to be taken, counting from 0.
        max_lr: peak rate, reached at the end of warmup.
        min_lr: floor reached at `decay_iters` and kept afterwards.
        warmup_iters: number of linear warmup steps (0 for none).
        decay_iters: step at which the cosine reaches `min_lr`.
    Returns:
        The learning rate for this step.
    """
    if step < warmup_iters:
        return max_lr * (step + 1) / (warmup_iters + 1)
    if step >= decay_iters or decay_iters <= warmup_iters:
        return min_lr
    ratio = (step - warmup_iters) / (decay_iters - warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))  # 1 -> 0
    return min_lr + coeff * (max_lr - min_lr)
