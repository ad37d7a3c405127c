"""LoRA: low-rank adapters on linear layers (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models").

A frozen linear layer y = x W^T + b gets a trainable low-rank update:

    y = x W^T + b + (alpha / r) * dropout(x) A^T B^T        A: (r, in), B: (out, r)

A starts random (Kaiming-uniform, as in the paper's code and `peft`) and B at zero, so a
freshly wrapped model computes exactly what it computed before. Only A and B (and
whatever head is trained beside them) get gradients: r * (in + out) parameters a layer
instead of in * out. `merge` folds the update into W (W += (alpha / r) B A) so that
inference costs nothing extra; `unmerge` takes it out again.

attnlab's attention projects queries, keys and values with one fused layer (`qkv`,
rows [q | k | v]; cross-attention: `q` and a fused `kv`). A `LoRALinear` over a fused
layer holds one adapter per slice of its output (`splits`): slice i gets its own
A_i (r, in) and B_i (out_i, r), which is exactly LoRA on separate query, key and value
layers (what `peft` does on a Hugging Face BERT's `query`, `key`, `value`). They are
stored stacked: `lora_A` is (n r, in) (A_1; A_2; ...), `lora_B` is (out, r) (B_1; B_2; ...).
One difference: the dropout on x is drawn once for all slices (separate layers draw
one mask each); with dropout 0, and in eval mode, the two are the same function.

    from attnlab.nn.lora import apply_lora, count_parameters
    adapted = apply_lora(model, rank=8, alpha=16)   # freezes everything, wraps the attention projections
    trainable, total = count_parameters(model)

`LoRALinear` is an `nn.Linear` (it shares the wrapped layer's weight and bias), so the
model's own weight names (`blocks.0.attn.qkv.weight`) stay as they were; the adapters add
`...qkv.lora_A` and `...qkv.lora_B`. `merged_copy(model)` is a plain copy with the updates
folded in and the adapters gone (what a checkpoint of the tuned model holds).

Notation: N leading dimensions of x, r rank, n slices.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from attnlab.nn.attention import MultiHeadAttention

__all__ = [
    "LoRALinear",
    "apply_lora",
    "count_parameters",
    "lora_layers",
    "lora_state_dict",
    "mark_only_lora_trainable",
    "merge_lora",
    "merged_copy",
    "unmerge_lora",
]


class LoRALinear(nn.Linear):
    """A linear layer with a low-rank trainable update; the base weight and bias are frozen.

    Args:
        base: the layer to adapt (its weight and bias are shared, not copied).
        rank: r, the rank of each update (>= 1).
        alpha: the update is scaled by alpha / r (so changing r keeps the step size alike).
        dropout: dropout on the input of the update branch.
        splits: output sizes of the slices that get an adapter each (must sum to
            `base.out_features`); None = one adapter over the whole output.
    """

    def __init__(
        self,
        base: nn.Linear,
        rank: int = 8,
        alpha: float = 16.0,
        dropout: float = 0.0,
        splits: Sequence[int] | None = None,
    ):
        nn.Module.__init__(self)  # not nn.Linear.__init__: the weight and bias are the base layer's own
        if isinstance(base, LoRALinear):
            raise ValueError("this layer already has a LoRA adapter")
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
            raise ValueError(f"LoRA rank must be a whole number of at least 1, got {rank!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {dropout}")
        splits = tuple(splits) if splits is not None else (base.out_features,)
        if sum(splits) != base.out_features or any(s < 1 for s in splits):
            raise ValueError(f"splits {splits} must be positive and sum to out_features ({base.out_features})")
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight
        self.bias = base.bias
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        self.rank, self.alpha, self.splits = rank, float(alpha), splits
        self.scaling = self.alpha / rank
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Parameter(torch.empty(len(splits) * rank, self.in_features, **factory))  # (n r, in)
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank, **factory))  # (out, r)
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False
        self.reset_lora_parameters()

    def reset_lora_parameters(self) -> None:
        """A Kaiming-uniform per slice (as `nn.Linear` and `peft` initialise it), B zero: the update starts at 0."""
        with torch.no_grad():
            for a in self.lora_A.split(self.rank, dim=0):
                nn.init.kaiming_uniform_(a, a=math.sqrt(5))
            self.lora_B.zero_()

    def delta_weight(self) -> Tensor:
        """The update (alpha / r) * B A as an (out, in) matrix, slice by slice."""
        rows = [
            b @ a for a, b in zip(self.lora_A.split(self.rank, dim=0), self.lora_B.split(list(self.splits), dim=0))
        ]  # each (out_i, in)
        return torch.cat(rows, dim=0) * self.scaling

    def forward(self, x: Tensor) -> Tensor:
        """(N..., in) -> (N..., out)."""
        y = nn.functional.linear(x, self.weight, self.bias)
        if self.merged:
            return y
        h = nn.functional.linear(self.lora_dropout(x), self.lora_A)  # (N..., n r)
        parts = [
            nn.functional.linear(h_i, b_i)  # (N..., out_i)
            for h_i, b_i in zip(h.split(self.rank, dim=-1), self.lora_B.split(list(self.splits), dim=0))
        ]
        return y + torch.cat(parts, dim=-1) * self.scaling

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the weight (forward is then one plain matmul)."""
        if not self.merged:
            self.weight.add_(self.delta_weight().to(self.weight.dtype))
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take a merged update out of the weight again."""
        if self.merged:
            self.weight.sub_(self.delta_weight().to(self.weight.dtype))
            self.merged = False

    def to_linear(self) -> nn.Linear:
        """A plain `nn.Linear` holding the merged weight (a copy; this layer is unchanged)."""
        out = nn.Linear(
            self.in_features,
            self.out_features,
            bias=self.bias is not None,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )
        with torch.no_grad():
            weight = self.weight if self.merged else self.weight + self.delta_weight().to(self.weight.dtype)
            out.weight.copy_(weight)
            if self.bias is not None:
                out.bias.copy_(self.bias)
        return out

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, "
            f"alpha={self.alpha:g}, splits={self.splits}, merged={self.merged}"
        )


def _attention_targets(model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """(module name, splits) of the query/key/value projections of every attnlab attention layer."""
    out = []
    for name, module in model.named_modules():
        if not isinstance(module, MultiHeadAttention):
            continue
        prefix = f"{name}." if name else ""
        D = module.head_dim
        if module.cross:
            out.append((prefix + "q", (module.embed_dim,)))
            out.append((prefix + "kv", (module.embed_dim, module.embed_dim)))
        else:
            out.append((prefix + "qkv", (module.num_heads * D, module.num_kv_heads * D, module.num_kv_heads * D)))
    return out


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def apply_lora(
    model: nn.Module,
    *,
    rank: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    targets: Iterable[str] | None = None,
    freeze: bool = True,
) -> list[str]:
    """Wrap linear layers of `model` in `LoRALinear` (in place) and freeze everything else.

    Args:
        model: any module (attnlab's GPT, Llama, Encoder, a Hugging Face model ...).
        rank, alpha, dropout: see `LoRALinear`.
        targets: names of modules to adapt, matched against the end of each module's
            dotted name (e.g. ["query", "key", "value"] for a Hugging Face BERT). None:
            the query/key/value projections of every attnlab `MultiHeadAttention`
            (`qkv` with one adapter each for q, k and v; cross-attention's `q` and `kv`).
        freeze: set requires_grad False on every parameter that is not an adapter's.
    Returns:
        The dotted names of the wrapped layers.
    Raises:
        ValueError: no layer matched, or a matched module is not an `nn.Linear`.
    """
    if targets is None:
        chosen = _attention_targets(model)
    else:
        wanted = list(targets)
        chosen = []
        for name, module in model.named_modules():
            if any(name == t or name.endswith("." + t) for t in wanted):
                if isinstance(module, LoRALinear):
                    continue
                if not isinstance(module, nn.Linear):
                    raise ValueError(f"LoRA target {name!r} is a {type(module).__name__}, not an nn.Linear")
                chosen.append((name, (module.out_features,)))
    if not chosen:
        raise ValueError(
            "no layer to adapt: the model has no attnlab attention layers"
            if targets is None
            else f"no module of the model is named {', '.join(targets)}"
        )
    if freeze:
        for p in model.parameters():
            p.requires_grad_(False)
    for name, splits in chosen:
        base = model.get_submodule(name)
        _set_submodule(model, name, LoRALinear(base, rank=rank, alpha=alpha, dropout=dropout, splits=splits))
    return [name for name, _ in chosen]


def lora_layers(model: nn.Module) -> list[tuple[str, LoRALinear]]:
    """The (name, layer) pairs of every `LoRALinear` in `model`."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LoRALinear)]


def mark_only_lora_trainable(model: nn.Module) -> None:
    """requires_grad True on the adapters' A and B, False on every other parameter."""
    for name, p in model.named_parameters():
        p.requires_grad_(name.endswith(("lora_A", "lora_B")))


def lora_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """Just the adapters' tensors ({"...qkv.lora_A": ..., "...qkv.lora_B": ...})."""
    return {k: v for k, v in model.state_dict().items() if k.endswith(("lora_A", "lora_B"))}


def merge_lora(model: nn.Module) -> None:
    """`merge` every adapter of `model`."""
    for _, layer in lora_layers(model):
        layer.merge()


def unmerge_lora(model: nn.Module) -> None:
    """`unmerge` every adapter of `model`."""
    for _, layer in lora_layers(model):
        layer.unmerge()


def merged_copy(model: nn.Module) -> nn.Module:
    """A deep copy of `model` with every adapter folded in and replaced by a plain `nn.Linear`.

    Its state dict has exactly the names the model had before `apply_lora` (the copy can
    be saved and loaded as an ordinary model); `model` itself is unchanged.
    """
    out = copy.deepcopy(model)
    for name, layer in lora_layers(out):
        _set_submodule(out, name, layer.to_linear())
    for p in out.parameters():
        p.requires_grad_(True)
    return out


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters of `model`, tied parameters counted once."""
    trainable = total = 0
    for p in model.parameters():  # parameters() lists a shared tensor once
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total
