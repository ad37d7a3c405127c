"""The induction-head lab: watch a two-layer attention-only transformer learn to copy in context.

Olsson et al. 2022 ("In-context learning and induction heads") and Elhage et al. 2021
("A mathematical framework for transformer circuits"): a two-layer attention-only model
trained on sequences with repeats suddenly (a *phase change*) learns an induction
circuit: a previous-token head in layer 0 writes "the token before me was A" into each
position, and an induction head in layer 1 uses that (K-composition) to find the earlier
position that followed the current token and copy what came next ([A][B] ... [A] -> [B]).
A one-layer model cannot compose heads and never learns it.

The data. Every step draws fresh sequences of `2 * half_len` random tokens whose segment
`x` (k tokens, k uniform in [min_half_len, half_len]) is repeated at once: `[x, x, filler]`
with random filler after. With k = half_len this is the standard probe `[x, x]`
(`attnlab.interp.heads.repeated_random_tokens`), on which everything is measured. The
period k varies on purpose: with one fixed period, position alone says where the answer
is (query t copies key t - half_len + 1), and a *one*-layer model with learned positions
solves the task in a few hundred steps without any induction head (we measured it), so the
control would prove nothing. With varied periods only content (which earlier token
matches mine?) finds the answer.

Positions are a learned table added to the residual stream (GPT-2's, the setting of
Elhage et al. and of the TransformerLens models built to study these circuits): the
layer-0 head then reads "I am at t, attend to t - 1" from the stream, and what it writes
stays there for layer 1's keys to read. That is the K-composition the ablations test.

What is recorded, every `eval_every` steps, on a fixed probe batch `[x, x]`:
  * first-half loss: the mean next-token loss on targets 1 .. N-1 (nothing to copy: about ln V);
  * repeated-half loss: targets N+1 .. 2N-1 (copyable from the first half; the target at N,
    the first token of the repeat, is not predictable and is left out of both);
  * each head's induction (prefix-matching) and previous-token score (`head_scores`).

The phase change, detected automatically (`detect_phase_change`): the first evaluation
step at which the repeated-half loss is at most `threshold` x the first-half loss (0.3:
below the level a model reaches without an induction circuit, since a one-layer model's
mixture over candidate periods stays above ~0.55 x ln V), and stays so for the next
`patience` evaluations (so a noisy dip does not count). Its seconds are the wall-clock
seconds of training up to that step.

Then the causal check (mean ablation over a reference batch, `head_ablation_hooks`):
removing the top induction head of the last layer, or the top previous-token head of
layer 0, should send the repeated-half loss back towards the first-half loss.

The run folder (`run_induction_lab`): `checkpoint/` (an ordinary attnlab checkpoint,
`GPT.from_checkpoint`), `curves.csv`, `head_scores.csv`, `ablations.csv`, `loss_curves.png`,
`head_scores.png`, `induction_pattern.png`, and `results.json` written last and atomically:
a folder with `results.json` is finished and a later run with the same config skips it;
one without is retrained from the start (a run takes seconds to minutes).

Notation: B batch, T time (2N), N half length, L layers, H heads, V vocabulary.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from attnlab import limits
from attnlab.errors import ConfigError
from attnlab.interp.ablation import head_ablation_hooks
from attnlab.interp.heads import HeadScores, head_scores, repeated_random_tokens
from attnlab.interp.hooks import run_with_cache, run_with_hooks

logger = logging.getLogger(__name__)

__all__ = [
    "InductionConfig",
    "InductionResult",
    "detect_phase_change",
    "half_losses",
    "induction_batch",
    "run_induction_lab",
    "train_induction",
]

RESULTS_FILE = "results.json"
CHECKPOINT_DIR = "checkpoint"


@dataclass(frozen=True)
class InductionConfig:
    """Settings of one induction-head run (defaults: the phase change in ~5-20 s on 2 CPU cores)."""

    vocab_size: int = 64  # random tokens 0 .. V-1; the first-half loss is about ln V
    half_len: int = 16  # N: the probe is [x, x] with |x| = N; sequences have 2N tokens
    min_half_len: int | None = None  # shortest repeated segment in training; None = half_len // 2
    num_layers: int = 2  # 2 = the induction circuit; 1 = the control that cannot compose heads
    num_heads: int = 2  # heads per layer (few heads: one clear head to find and ablate)
    embed_dim: int = 64  # residual stream width
    positional: str = "learned"  # learned positions in the stream: the papers' setting (module docstring)
    steps: int = 3000  # the most optimizer steps
    batch_size: int = 32  # fresh sequences per step
    lr: float = 1e-3  # AdamW learning rate (constant)
    weight_decay: float = 0.0  # AdamW weight decay
    eval_every: int = 50  # steps between evaluations on the probe batch
    eval_batch: int = 128  # probe sequences (also the size of the ablation reference batch)
    threshold: float = 0.3  # phase change: repeated-half loss <= threshold x first-half loss ...
    patience: int = 2  # ... at this and the next `patience` evaluations
    stop_after: int | None = 300  # steps to go on after the phase change (None: train all `steps`)
    seed: int = 0  # model initialisation, training data and probe batches
    device: str = "cpu"  # cpu, cuda, mps or auto

    def __post_init__(self) -> None:
        limits.check_int(self.vocab_size, "vocab_size", 2, limits.MAX_VOCAB)
        limits.check_int(self.half_len, "half_len", 2, limits.MAX_COMPARE_SEQ_LEN // 2)
        if self.min_half_len is not None:
            limits.check_int(self.min_half_len, "min_half_len", 2, self.half_len)
        limits.check_int(self.num_layers, "num_layers", 1, 64)
        limits.check_int(self.num_heads, "num_heads", 1, 256)
        limits.check_int(self.embed_dim, "embed_dim", 1, 65_536)
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"embed_dim ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})")
        if self.positional not in ("learned", "sinusoidal", "fourier", "rotary", "none"):
            raise ConfigError(
                f"unknown positional {self.positional!r}; choose learned, sinusoidal, fourier, rotary or none"
            )
        limits.check_int(self.steps, "steps", 1, limits.MAX_ITERS)
        limits.check_int(self.batch_size, "batch_size", 1, limits.MAX_BATCH_SIZE)
        limits.check_float(self.lr, "lr", 0.0, limits.MAX_LR, low_open=True)
        limits.check_float(self.weight_decay, "weight_decay", 0.0, 10.0)
        limits.check_int(self.eval_every, "eval_every", 1, limits.MAX_ITERS)
        limits.check_int(self.eval_batch, "eval_batch", 1, limits.MAX_EVAL_BATCH_SIZE)
        limits.check_float(self.threshold, "threshold", 0.0, 1.0, low_open=True, high_open=True)
        limits.check_int(self.patience, "patience", 0, 1000)
        if self.stop_after is not None:
            limits.check_int(self.stop_after, "stop_after", 0, limits.MAX_ITERS)
        limits.check_seed(self.seed)

    @property
    def shortest(self) -> int:
        """The shortest repeated segment of the training data."""
        return self.min_half_len if self.min_half_len is not None else max(2, self.half_len // 2)

    @classmethod
    def quick(cls, **overrides: Any) -> InductionConfig:
        """A smoke-test setting: a smaller vocabulary, model and probe (seconds).

        For tests of the machinery only: over seeds 0-4 it reaches the threshold late
        (steps 875-1450) or not at all, usually without the standard previous-token and
        induction heads. The lab's results come from the default `InductionConfig()`.
        """
        settings: dict[str, Any] = dict(
            vocab_size=32, half_len=12, embed_dim=32, steps=1500, eval_every=25, eval_batch=64, stop_after=100
        )
        return cls(**{**settings, **overrides})

    def model_config(self) -> Any:
        """The attention-only `GPTConfig` of this run."""
        from attnlab.models.gpt import GPTConfig

        return GPTConfig(
            vocab_size=self.vocab_size,
            max_seq_len=2 * self.half_len,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            embed_dim=self.embed_dim,
            positional=self.positional,
            tie_weights=False,  # the unembedding need not mirror the embedding in a copying circuit
            attn_only=True,
        )


# ---------------------------------------------------------------------------
# Data and losses
# ---------------------------------------------------------------------------


def induction_batch(config: InductionConfig, generator: torch.Generator) -> torch.Tensor:
    """Fresh training ids (B, 2N): `[x, x, filler]`, |x| = k uniform in [min_half_len, half_len]."""
    B, N, V = config.batch_size, config.half_len, config.vocab_size
    ids = torch.randint(0, V, (B, 2 * N), generator=generator)
    k = torch.randint(config.shortest, N + 1, (B, 1), generator=generator)  # (B, 1) periods
    t = torch.arange(2 * N)[None]  # (1, T)
    repeat = (t >= k) & (t < 2 * k)  # (B, T) positions of the second copy
    source = (t - k).clamp_min(0)  # the position each copy token repeats
    copied = torch.gather(ids, 1, source)
    return torch.where(repeat, copied, ids)


def half_losses(logits: torch.Tensor, ids: torch.Tensor) -> tuple[float, float]:
    """(first-half, repeated-half) mean next-token loss on probe ids `[x, x]` (module docstring).

    Args:
        logits: (B, T, V) the model's logits on `ids`.
        ids: (B, T) probe ids, T = 2N.
    """
    B, T = ids.shape
    N = T // 2
    ce = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), ids[:, 1:].reshape(-1), reduction="none")
    ce = ce.view(B, T - 1)  # ce[:, i] scores target i + 1
    return float(ce[:, : N - 1].mean()), float(ce[:, N:].mean())


def detect_phase_change(
    first: list[float] | np.ndarray, repeated: list[float] | np.ndarray, *, threshold: float = 0.3, patience: int = 2
) -> int | None:
    """Index of the evaluation at which the phase change happened, or None.

    The first index i with repeated[j] <= threshold * first[j] for every j in i .. i + patience
    (evaluations past the end of the curve are not required: a run that stops right after the
    drop still counts, as long as it holds until then).
    """
    first, repeated = np.asarray(first, float), np.asarray(repeated, float)
    below = repeated <= threshold * first
    for i in range(len(below)):
        if below[i : i + patience + 1].all():
            return i
    return None


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


@dataclass
class InductionResult:
    """One run of the lab: curves, the phase change, the heads found, ablation losses."""

    config: dict[str, Any]  # the InductionConfig as a dict
    steps: list[int]  # evaluation steps
    seconds: list[float]  # training wall-clock seconds at each evaluation
    first_loss: list[float]  # first-half loss at each evaluation
    repeated_loss: list[float]  # repeated-half loss at each evaluation
    induction_scores: list[list[list[float]]]  # (E, L, H) induction score at each evaluation
    previous_token_scores: list[list[list[float]]]  # (E, L, H)
    phase_change_step: int | None  # the detected step (None: no phase change)
    phase_change_seconds: float | None
    induction_head: tuple[int, int] | None  # (layer, head): top induction score of the last layer
    previous_token_head: tuple[int, int] | None  # top previous-token score of layer 0 (None for 1 layer)
    ablations: list[dict[str, Any]] = field(default_factory=list)  # rows: ablated, heads, first/repeated loss
    train_seconds: float = 0.0
    trained_steps: int = 0
    skipped: bool = False  # True when a finished run folder was read back instead of trained

    @property
    def formed(self) -> bool:
        """Whether the phase change was detected."""
        return self.phase_change_step is not None

    def ablation(self, name: str) -> dict[str, Any] | None:
        """The ablation row called `name` (none, induction_head, previous_token_head, ...)."""
        return next((r for r in self.ablations if r["ablated"] == name), None)

    def scores_at(self, index: int) -> dict[str, np.ndarray]:
        """{"induction", "previous_token"}: (L, H) scores at evaluation `index` (0 = before, -1 = after)."""
        return {
            "induction": np.asarray(self.induction_scores[index]),
            "previous_token": np.asarray(self.previous_token_scores[index]),
        }

    def to_rows(self) -> dict[str, list[dict[str, Any]]]:
        """Tidy tables: "curves" (one row per evaluation), "heads" (per evaluation x head), "ablations"."""
        curves, heads = [], []
        for e, step in enumerate(self.steps):
            curves.append(
                {
                    "step": step,
                    "seconds": round(self.seconds[e], 3),
                    "first_half_loss": self.first_loss[e],
                    "repeated_half_loss": self.repeated_loss[e],
                }
            )
            ind, prev = self.induction_scores[e], self.previous_token_scores[e]
            for layer in range(len(ind)):
                for head in range(len(ind[layer])):
                    heads.append(
                        {
                            "step": step,
                            "layer": layer,
                            "head": head,
                            "induction": ind[layer][head],
                            "previous_token": prev[layer][head],
                        }
                    )
        ablations = [{**r, "heads": " ".join(f"L{a}H{b}" for a, b in r["heads"])} for r in self.ablations]
        return {"curves": curves, "heads": heads, "ablations": ablations}

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("skipped")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InductionResult:
        data = dict(data)
        for key in ("induction_head", "previous_token_head"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        data["ablations"] = [{**r, "heads": [tuple(h) for h in r["heads"]]} for r in data.get("ablations", [])]
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


def _device(name: str) -> str:
    from attnlab.utils import select_device

    return select_device(name)


def _probe(model: Any, probe: torch.Tensor) -> tuple[float, float, HeadScores]:
    model.eval()
    with torch.no_grad():
        logits, cache = run_with_cache(model, probe, names="blocks.*.attn.hook_pattern")
    first, repeated = half_losses(logits, probe)
    scores = head_scores(cache, probe.cpu())
    model.train()
    return first, repeated, scores


def train_induction(
    config: InductionConfig, *, on_eval: Callable[[dict[str, Any]], None] | None = None
) -> tuple[Any, InductionResult]:
    """Train one attention-only GPT on repeated random tokens; detect the phase change; ablate.

    Args:
        config: the run's settings.
        on_eval: called after each evaluation with {"step", "seconds", "first_loss", "repeated_loss"}.
    Returns:
        (the trained model in eval mode, its `InductionResult`).
    """
    from attnlab.models.gpt import GPT

    device = _device(config.device)
    torch.manual_seed(config.seed)
    model = GPT(config.model_config()).to(device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.99))
    data = torch.Generator().manual_seed(config.seed * 7919 + 1)  # training batches
    probe = repeated_random_tokens(config.vocab_size, config.half_len, config.eval_batch, seed=config.seed + 10_001)
    probe = probe.to(device)

    steps, seconds, firsts, repeats, inds, prevs = [], [], [], [], [], []
    detected: int | None = None
    train_time = 0.0
    step = 0
    while True:
        if step % config.eval_every == 0 or step == config.steps:
            first, repeated, scores = _probe(model, probe)
            steps.append(step)
            seconds.append(train_time)
            firsts.append(first)
            repeats.append(repeated)
            inds.append(scores.induction.tolist())
            prevs.append(scores.previous_token.tolist())
            if on_eval is not None:
                on_eval({"step": step, "seconds": train_time, "first_loss": first, "repeated_loss": repeated})
            logger.debug("step %d: first-half loss %.3f, repeated-half loss %.3f", step, first, repeated)
            if detected is None:
                detected = detect_phase_change(firsts, repeats, threshold=config.threshold, patience=config.patience)
                if detected is not None and len(steps) - 1 - detected < config.patience:
                    detected = None  # not yet confirmed by `patience` later evaluations
            if detected is not None and config.stop_after is not None and step >= steps[detected] + config.stop_after:
                break
        if step >= config.steps:
            break
        start = time.perf_counter()
        ids = induction_batch(config, data).to(device)
        logits = model(ids).logits
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, config.vocab_size), ids[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        train_time += time.perf_counter() - start
        step += 1
    # a run that ends inside the patience window: accept a drop that holds to the end
    if detected is None:
        detected = detect_phase_change(firsts, repeats, threshold=config.threshold, patience=config.patience)

    model.eval()
    final = head_scores(model, probe)
    last = config.num_layers - 1
    ind_layer = final.induction[last]
    induction_head = (last, int(np.argmax(ind_layer)))
    previous_token_head = (0, int(np.argmax(final.previous_token[0]))) if config.num_layers > 1 else None
    result = InductionResult(
        config=dataclasses.asdict(config),
        steps=steps,
        seconds=seconds,
        first_loss=firsts,
        repeated_loss=repeats,
        induction_scores=inds,
        previous_token_scores=prevs,
        phase_change_step=steps[detected] if detected is not None else None,
        phase_change_seconds=seconds[detected] if detected is not None else None,
        induction_head=induction_head,
        previous_token_head=previous_token_head,
        train_seconds=train_time,
        trained_steps=step,
    )
    result.ablations = ablation_losses(model, config, result, probe)
    return model, result


def ablation_losses(model: Any, config: InductionConfig, result: InductionResult, probe: torch.Tensor) -> list[dict]:
    """First- and repeated-half loss on the probe with no head, then each found head, mean-ablated.

    Rows: "none"; "induction_head" (the top induction head of the last layer);
    "previous_token_head" (top previous-token head of layer 0, models with 2+ layers);
    "last_layer_induction_heads" (every last-layer head with at least half the top induction
    score: several heads often share the work, and removing one leaves the others).
    """
    device = probe.device
    reference = repeated_random_tokens(config.vocab_size, config.half_len, config.eval_batch, seed=config.seed + 20_002)
    reference = reference.to(device)
    last = config.num_layers - 1
    final_ind = np.asarray(result.induction_scores[-1])[last]
    plan: list[tuple[str, list[tuple[int, int]]]] = [("none", [])]
    if result.induction_head is not None:
        plan.append(("induction_head", [result.induction_head]))
    if result.previous_token_head is not None:
        plan.append(("previous_token_head", [result.previous_token_head]))
    shared = [(last, int(h)) for h in np.flatnonzero(final_ind >= 0.5 * final_ind.max())]
    if len(shared) > 1:
        plan.append(("last_layer_induction_heads", shared))
    rows = []
    with torch.no_grad():
        for name, heads in plan:
            if heads:
                fwd = head_ablation_hooks(model, heads, kind="mean", reference=reference)
                logits = run_with_hooks(model, probe, fwd_hooks=fwd)
            else:
                logits = model(probe).logits
            first, repeated = half_losses(logits, probe)
            rows.append({"ablated": name, "heads": heads, "first_half_loss": first, "repeated_half_loss": repeated})
    return rows


# ---------------------------------------------------------------------------
# The run folder
# ---------------------------------------------------------------------------


def read_finished(out_dir: str | Path, config: InductionConfig) -> InductionResult | None:
    """The result of a finished run of `config` in `out_dir`, or None (missing, unreadable, other config)."""
    path = Path(out_dir) / RESULTS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("config") != json.loads(json.dumps(dataclasses.asdict(config))):
        return None
    try:
        result = InductionResult.from_json(data)
    except (TypeError, KeyError):
        return None
    result.skipped = True
    return result


def run_induction_lab(
    config: InductionConfig,
    out_dir: str | Path,
    *,
    force: bool = False,
    figures: bool = True,
    on_eval: Callable[[dict[str, Any]], None] | None = None,
) -> InductionResult:
    """Train (or read back) one run and write its folder (module docstring).

    Args:
        config: the run's settings.
        out_dir: the run folder; a finished run of the same config there is read back, not retrained.
        force: write into a folder holding files attnlab did not write (they are kept).
        figures: write the three figures.
        on_eval: see `train_induction`.
    """
    from attnlab.runs import open_run, write_tidy_csv
    from attnlab.utils import write_json_atomic

    out = Path(out_dir)
    with open_run(out, command="interp induction", force=force):
        done = read_finished(out, config)
        if done is not None:
            logger.info("%s: finished run found, skipping", out)
            return done
        (out / RESULTS_FILE).unlink(missing_ok=True)  # a stale result of another config
        model, result = train_induction(config, on_eval=on_eval)
        model.save(out / CHECKPOINT_DIR, metadata={"induction_lab": dataclasses.asdict(config)})
        tables = result.to_rows()
        write_tidy_csv(out / "curves.csv", tables["curves"], "first- vs repeated-half loss during training")
        write_tidy_csv(out / "head_scores.csv", tables["heads"], "induction and previous-token score per head")
        write_tidy_csv(out / "ablations.csv", tables["ablations"], "loss with the found heads mean-ablated")
        if figures:
            write_figures(model, config, result, out)
        write_json_atomic(out / RESULTS_FILE, result.to_json())  # last: marks the run finished
    return result


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------


def write_figures(model: Any, config: InductionConfig, result: InductionResult, out: Path) -> list[Path]:
    """loss_curves.png, head_scores.png and induction_pattern.png in `out`."""
    from attnlab.viz._mpl import PALETTE, new_figure, save_figure, styled

    @styled
    def loss_figure() -> Any:
        fig = new_figure(8, 5)
        ax = fig.subplots()
        ax.plot(result.steps, result.first_loss, color=PALETTE[0], label="first half (nothing to copy)")
        ax.plot(result.steps, result.repeated_loss, color=PALETTE[1], label="repeated half (copyable)")
        ax.axhline(
            math.log(config.vocab_size), color="grey", lw=1, ls=":", label=f"ln V = {math.log(config.vocab_size):.2f}"
        )
        if result.phase_change_step is not None:
            ax.axvline(
                result.phase_change_step,
                color=PALETTE[2],
                ls="--",
                label=f"phase change: step {result.phase_change_step}",
            )
        ax.set_xlabel("training step")
        ax.set_ylabel("next-token loss (nats)")
        ax.set_title(f"{config.num_layers}-layer attention-only model, seed {config.seed}")
        ax.legend(fontsize=10)
        return fig

    @styled
    def scores_figure() -> Any:
        fig = new_figure(10, 4.5)
        axes = fig.subplots(1, 2, sharey=True)
        ind = np.asarray(result.induction_scores)  # (E, L, H)
        prev = np.asarray(result.previous_token_scores)
        for ax, arr, title in (
            (axes[0], ind, "induction (prefix-matching) score"),
            (axes[1], prev, "previous-token score"),
        ):
            i = 0
            for layer in range(arr.shape[1]):
                for head in range(arr.shape[2]):
                    ls = "-" if layer == arr.shape[1] - 1 else "--"
                    ax.plot(
                        result.steps,
                        arr[:, layer, head],
                        ls=ls,
                        color=PALETTE[i % len(PALETTE)],
                        label=f"L{layer}H{head}",
                    )
                    i += 1
            if result.phase_change_step is not None:
                ax.axvline(result.phase_change_step, color="grey", ls=":")
            ax.set_title(title, fontsize=13)
            ax.set_xlabel("training step")
        axes[0].set_ylabel("mean attention weight")
        axes[1].legend(fontsize=9, ncol=2)
        return fig

    @styled
    def pattern_figure() -> Any:
        probe = repeated_random_tokens(config.vocab_size, config.half_len, 1, seed=config.seed + 30_003)
        probe = probe.to(next(model.parameters()).device)
        with torch.no_grad():
            _, cache = run_with_cache(model, probe, names="blocks.*.attn.hook_pattern")
        layer, head = result.induction_head
        w = cache[f"blocks.{layer}.attn.hook_pattern"][0, head].cpu().numpy()
        labels = [str(t) for t in probe[0].tolist()]
        fig = new_figure(7.5, 6.5)
        ax = fig.subplots()
        im = ax.imshow(w, cmap="Blues", vmin=0, vmax=1)
        T = len(labels)
        ax.set_xticks(range(T), labels, fontsize=7, rotation=90)
        ax.set_yticks(range(T), labels, fontsize=7)
        ax.set_xlabel("key (token id)")
        ax.set_ylabel("query (token id)")
        ax.set_title(
            f"L{layer}H{head} on a repeated sequence: the stripe is t -> t - {config.half_len} + 1", fontsize=12
        )
        fig.colorbar(im, ax=ax, shrink=0.8, label="attention weight")
        return fig

    return [
        save_figure(loss_figure(), out / "loss_curves.png"),
        save_figure(scores_figure(), out / "head_scores.png"),
        save_figure(pattern_figure(), out / "induction_pattern.png"),
    ]
