"""Data-parallel training across processes and machines, launched by `torchrun`.

`torchrun --nproc_per_node=N -m attnlab train ...` starts N processes and sets
RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT; `setup()` joins them into
one process group (NCCL on GPUs, gloo on CPU). Each process samples its own batches
(seeded by its rank), DistributedDataParallel averages the gradients, and only
rank 0 writes logs and checkpoints. Multi-machine runs add `--nnodes` and a
rendezvous address to the same command (see the README).
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)


def setup() -> tuple[int, int, int]:
    """Join the torchrun process group if launched by torchrun.

    Returns:
        (rank, world_size, local_rank); (0, 1, 0) for a normal single-process run.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1, 0
    import torch
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        logger.debug("joined process group: rank %d of %d (%s)", rank, world_size, backend)
    return rank, world_size, local_rank


def teardown() -> None:
    """Leave the process group (if any)."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
