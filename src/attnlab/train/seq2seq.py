"""Recipe: train an encoder-decoder on a generated task; decode text; exact-match accuracy.

What `attnlab train --task reverse|sort|numbers [--model rnn|rnn-bahdanau|rnn-luong|transformer] --out DIR`
runs, as library calls:

    from attnlab.train.seq2seq import train_task, recipe
    r = recipe("reverse")                      # the transformer; recipe("reverse", model="rnn-bahdanau") ...
    results = train_task("runs/reverse", task=r.task, model=r.model, train=r.train)
    results["exact_match"]          # greedy decoding on the held-out examples

The model learns with teacher forcing (cross-entropy of `y <eos>` given `<bos> y`);
at every evaluation the Trainer also decodes the task's held-out examples greedily
and reports the share decoded exactly right (`exact_match`); after training the same
examples are decoded with beam search (`exact_match_beam`). Both land in
OUT/results.json, with a few decoded examples in OUT/predictions.txt.
`alignment(model, tokenizer, text)` decodes one text and returns the decoder's attention
over the source at every step (what `attnlab viz alignment` draws).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnlab import checkpoint as ckpt
from attnlab.config import to_dict
from attnlab.configs.rnn_seq2seq import TASK_MODEL_ATTENTION, RNNSeq2SeqConfig
from attnlab.data.seq2seq_tasks import TASK_NAMES, TaskConfig, TaskData, make_task, task_tokenizer
from attnlab.errors import CheckpointError, ConfigError, TokenizerError, UnknownCharactersError
from attnlab.models.seq2seq import Seq2SeqConfig
from attnlab.runs import writes_run
from attnlab.train.trainer import RESULTS_FILE, TrainConfig, Trainer
from attnlab.utils import write_json_atomic, write_text_atomic

logger = logging.getLogger(__name__)

__all__ = [
    "TASK_MODELS",
    "task_model_type",
    "TaskRecipe",
    "recipe",
    "exact_match",
    "Translation",
    "translate",
    "Alignment",
    "alignment",
    "encode_source",
    "output_text",
    "evaluate_exact_match",
    "train_task",
    "PREDICTIONS_FILE",
]

PREDICTIONS_FILE = "predictions.txt"

# `attnlab train --task NAME --model M`: the encoder-decoders a task trains (default transformer)
TASK_MODELS = ("rnn", "rnn-bahdanau", "rnn-luong", "transformer")
TaskModelConfig = Seq2SeqConfig | RNNSeq2SeqConfig


def task_model_type(model: str) -> str:
    """The registry model type that `--model` names build ("seq2seq" or "rnn_seq2seq").

    Raises:
        ConfigError: an unknown --model (the message lists the valid ones).
    """
    if model not in TASK_MODELS:
        raise ConfigError(f"unknown --model {model!r}; choose one of: {', '.join(TASK_MODELS)}")
    return "seq2seq" if model == "transformer" else "rnn_seq2seq"


# ---------------------------------------------------------------------------
# Recipes: default task, model and training settings per task
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskRecipe:
    """The settings `attnlab train --task NAME` starts from (flags and files override them)."""

    task: TaskConfig  # the task and its sizes
    model: TaskModelConfig  # the model (vocab_size and special ids come from the tokenizer)
    train: TrainConfig  # optimisation
    model_preset: str = "small"  # the preset of the config class `model` was built from
    train_overrides: dict[str, Any] = field(default_factory=dict)  # fields that differ from TrainConfig()


# Training settings shared by the tasks: batches of 64 examples, AdamW at 1e-3 with a
# short warmup and cosine decay; evaluation (loss + greedy exact match) every 250 steps.
_COMMON_TRAIN: dict[str, Any] = dict(
    batch_size=64,
    lr=1e-3,
    min_lr=1e-4,
    warmup_iters=100,
    weight_decay=0.01,
    eval_interval=250,
    eval_iters=8,
    log_interval=50,
)
_TASK_TRAIN: dict[str, dict[str, Any]] = {
    "reverse": dict(max_iters=1000),
    "sort": dict(max_iters=1500),
    "numbers": dict(max_iters=2000),
}


def recipe(name: str, model: str = "transformer") -> TaskRecipe:
    """The default recipe of task `name` (reverse, sort or numbers) for the encoder-decoder `model`.

    `model` is one of `TASK_MODELS`: the transformer (`Seq2SeqConfig` "small"), or the
    recurrent encoder-decoder (`RNNSeq2SeqConfig` "small") without attention (rnn), with
    additive (rnn-bahdanau) or with general multiplicative attention (rnn-luong). The
    training settings are the same for all.

    Raises:
        ConfigError: unknown task or model (the message lists the valid ones).
    """
    if name not in TASK_NAMES:
        raise ConfigError(f"unknown task {name!r}; choose one of: {', '.join(TASK_NAMES)}")
    model_type = task_model_type(model)
    overrides = {**_COMMON_TRAIN, **_TASK_TRAIN[name]}
    if model_type == "seq2seq":
        config: TaskModelConfig = Seq2SeqConfig.from_name("small")
    else:
        config = RNNSeq2SeqConfig.from_name("small", attention=TASK_MODEL_ATTENTION[model])
    return TaskRecipe(
        task=TaskConfig.from_name(name),
        model=config,
        train=TrainConfig(**overrides),
        model_preset="small",
        train_overrides=overrides,
    )


# ---------------------------------------------------------------------------
# Decoding text and scoring it
# ---------------------------------------------------------------------------


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Share of predictions equal to their reference, character for character.

    Raises:
        ValueError: the two lists differ in length, or are empty.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        raise ValueError("exact_match needs at least one example")
    return sum(p == r for p, r in zip(predictions, references)) / len(references)


@dataclass
class Translation:
    """One decoded output."""

    source: str  # the input text
    text: str  # the decoded output (up to `<eos>`, which is not included)
    log_prob: float  # log P(output <eos> | source) under the model
    finished: bool  # the model produced `<eos>` (else it hit max_new_tokens)


def encode_source(tokenizer: Any, text: str, eos_id: int) -> list[int]:
    """Token ids of a source text with `<eos>` appended, as in training.

    Raises:
        UnknownCharactersError: `text` holds characters the vocabulary lacks (the task
            tokenizer has `<unk>`, but an unknown input is a user error, not a guess).
    """
    ids = tokenizer.encode(text)
    unk = tokenizer.unk_id
    if unk is not None and unk in ids:
        stoi = getattr(tokenizer, "stoi", None)
        if stoi is not None:
            raise UnknownCharactersError({c for c in text if c not in stoi}, where=f"input {text!r}")
        raise TokenizerError(f"the input {text!r} holds tokens this model's vocabulary does not know")
    return ids + [eos_id]


def output_text(tokenizer: Any, ids: Sequence[int], eos_id: int) -> str:
    """Text of generated ids, up to (not including) the first `<eos>`."""
    ids = list(ids)
    if eos_id in ids:
        ids = ids[: ids.index(eos_id)]
    return tokenizer.decode(ids)


def _check_source_fits(config: Any, text: str, ids: Sequence[int]) -> None:
    """Refuse a source longer than a position table can hold (recurrent models have none).

    Raises:
        ConfigError: naming the source's length and the model's limit.
    """
    if config.positional in ("learned", "sinusoidal", "fourier") and len(ids) > config.max_source_len:
        raise ConfigError(
            f"the input {text[:40]!r} has {len(ids)} tokens (with <eos>) but this model reads at most "
            f"{config.max_source_len}; shorten it"
        )


def translate(
    model: Any,
    tokenizer: Any,
    sources: Sequence[str],
    *,
    beam_width: int = 1,
    length_penalty: float = 1.0,
    max_new_tokens: int | None = None,
    batch_size: int = 256,
    use_cache: bool = True,
) -> list[Translation]:
    """Decode source strings with a trained `Seq2Seq` or `RNNSeq2Seq` (greedy, or beam search when beam_width > 1).

    Args:
        model: a `Seq2Seq` or `RNNSeq2Seq` (any device; put in eval mode here and restored after).
        tokenizer: its tokenizer (from the checkpoint).
        sources: input texts.
        beam_width: 1 = greedy; K > 1 keeps K hypotheses.
        length_penalty: beam search ranks by log-prob / length**length_penalty.
        max_new_tokens: longest output (default: the decoder's max_target_len).
        batch_size: sources decoded together.
        use_cache: reuse keys/values while decoding.
    Returns:
        One `Translation` per source, in order.
    Raises:
        UnknownCharactersError: a source holds characters the vocabulary lacks.
        ConfigError: a source is longer than the model's max_source_len.
    """
    import torch

    c = model.config
    device = next(model.parameters()).device
    encoded = [encode_source(tokenizer, s, c.eos_id) for s in sources]
    for s, ids in zip(sources, encoded):
        _check_source_fits(c, s, ids)
    was_training = model.training
    model.eval()
    out: list[Translation] = []
    try:
        for start in range(0, len(encoded), batch_size):
            rows = encoded[start : start + batch_size]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), c.pad_id, dtype=torch.long)
            for i, r in enumerate(rows):
                ids[i, : len(r)] = torch.tensor(r)
            ids = ids.to(device)
            with torch.no_grad():
                gen = model.generate(
                    ids,
                    ids != c.pad_id,
                    beam_width=beam_width,
                    max_new_tokens=max_new_tokens,
                    length_penalty=length_penalty,
                    use_cache=use_cache,
                )
            for i in range(len(rows)):
                text = output_text(tokenizer, gen.sequences[i, : int(gen.lengths[i])].tolist(), c.eos_id)
                out.append(Translation(sources[start + i], text, float(gen.scores[i]), bool(gen.finished[i])))
    finally:
        model.train(was_training)
    return out


@dataclass
class Alignment:
    """What the decoder attended to while it produced one greedy output: `alignment` returns it.

    Row t of every map is decoder step t (the step that produced `output_tokens[t]`); column j is
    source position j (`source_tokens[j]`, the last being `<eos>`). Each row sums to 1.
    """

    source: str  # the input text
    text: str  # the greedy output (up to `<eos>`, which is not included)
    source_tokens: list[str]  # S tokens of the source, `<eos>` included
    output_tokens: list[str]  # T tokens of the greedy output, `<eos>` included when the model produced it
    weights: Any  # (L, H, T, S) float32 NumPy array: per decoder layer and head (a recurrent model: L = H = 1)
    model_type: str  # registry type of the model: "seq2seq", "rnn_seq2seq", ...
    attention: str  # its attention: "additive", "dot", "general" (recurrent) or "multi-head" (transformer)
    finished: bool  # the output ended with `<eos>` (else it hit max_new_tokens)


def _token_strings(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    strings = getattr(tokenizer, "token_strings", None)
    if strings is not None:
        return list(strings(ids))
    return [tokenizer.decode([int(i)]) for i in ids]


def alignment(model: Any, tokenizer: Any, text: str, *, max_new_tokens: int | None = None) -> Alignment:
    """Decode `text` greedily and return the decoder's attention over the source at every step.

    The output is decoded first (as `translate` does); one teacher-forced forward pass over
    that output with `output_attentions=True` then gives the cross-attention weights, the
    alignment of Bahdanau et al. (2015, fig. 3): decoder step x source position.

    Args:
        model: a trained encoder-decoder with attention (`Seq2Seq`, or `RNNSeq2Seq` whose
            attention is additive, dot or general); put in eval mode here and restored after.
        tokenizer: its tokenizer (from the checkpoint).
        text: the source text.
        max_new_tokens: longest output (default: the decoder's max_target_len).
    Returns:
        An `Alignment` with `weights` (L, H, T, S).
    Raises:
        ConfigError: the model has no attention (a recurrent model with attention "none"),
            or the source is longer than the model reads.
        UnknownCharactersError: the text holds characters the vocabulary lacks.
    """
    import numpy as np
    import torch

    c = model.config
    attention = str(getattr(c, "attention", "multi-head"))
    if attention == "none":  # checked first: nothing to decode for
        raise ConfigError(
            "this model has no attention: it reads the source through one fixed-size state (the encoder's "
            "last), so there is no alignment to draw; train one with attention "
            "(--model rnn-bahdanau, rnn-luong or transformer)"
        )
    ids = encode_source(tokenizer, text, c.eos_id)
    _check_source_fits(c, text, ids)
    device = next(model.parameters()).device
    source = torch.tensor([ids], device=device)  # (1, S)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            gen = model.generate(source, max_new_tokens=max_new_tokens)
            output = gen.sequences[:, : int(gen.lengths[0])]  # (1, T) no <bos>; <eos> last when finished
            cross = model(source, labels=output, output_attentions=True).cross_attentions
    finally:
        model.train(was_training)
    if not cross:
        raise ConfigError(
            f"this {getattr(model, 'model_type', 'model')} model has no attention over the source: it reads the "
            "source through one fixed-size state, so there is no alignment to draw"
        )
    weights = np.stack([a[0].detach().float().cpu().numpy() for a in cross])  # (L, H, T, S)
    return Alignment(
        source=text,
        text=output_text(tokenizer, output[0].tolist(), c.eos_id),
        source_tokens=_token_strings(tokenizer, ids),
        output_tokens=_token_strings(tokenizer, output[0].tolist()),
        weights=weights,
        model_type=str(getattr(model, "model_type", type(model).__name__)),
        attention=attention,
        finished=bool(gen.finished[0]),
    )


def evaluate_exact_match(
    model: Any,
    tokenizer: Any,
    examples: Sequence[tuple[str, str]],
    *,
    beam_width: int = 1,
    length_penalty: float = 1.0,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Decode (source, target) examples and score exact match.

    Returns:
        {"exact_match": share right, "num_examples": n, "predictions": [(source, target, prediction)]}.
    """
    translations = translate(
        model,
        tokenizer,
        [s for s, _ in examples],
        beam_width=beam_width,
        length_penalty=length_penalty,
        batch_size=batch_size,
    )
    predictions = [t.text for t in translations]
    return {
        "exact_match": exact_match(predictions, [t for _, t in examples]),
        "num_examples": len(examples),
        "predictions": [(s, t, p) for (s, t), p in zip(examples, predictions)],
    }


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


def _fit_model_to_task(model: TaskModelConfig, task: Any, tokenizer: Any) -> TaskModelConfig:
    """Vocabulary and special ids from the tokenizer; check the task fits the model's lengths."""
    model = dataclasses.replace(
        model,
        vocab_size=tokenizer.vocab_size,
        pad_id=tokenizer.pad_id,
        bos_id=tokenizer.bos_id,
        eos_id=tokenizer.eos_id,
    )
    if model.positional in ("learned", "sinusoidal", "fourier"):
        need_source = task.max_source_chars() + 1  # + <eos>
        need_target = task.max_target_chars() + 1  # <bos> + target, or target + <eos>
        if need_source > model.max_source_len:
            raise ConfigError(
                f"the {task.name} task has sources of up to {need_source} tokens (with <eos>) but "
                f"model.max_source_len is {model.max_source_len}; pass --model.max_source_len={need_source} "
                "or lower --task.max_length"
            )
        if need_target > model.max_target_len:
            raise ConfigError(
                f"the {task.name} task has targets of up to {need_target} tokens (with <eos>) but "
                f"model.max_target_len is {model.max_target_len}; pass --model.max_target_len={need_target} "
                "or lower --task.max_length"
            )
    return model


MAX_TASK_LENGTH = 1_000  # task.max_length: longest source (symbols or digits)
MAX_EVAL_EXAMPLES = 100_000  # task.num_eval_examples


def check_task_bounds(task: TaskConfig) -> None:
    """Upper bounds of a task's sizes (attnlab.limits style): refuse a typo before examples are drawn.

    Raises:
        ConfigError: naming the field and its range.
    """
    from attnlab import limits

    limits.check_int(task.min_length, "task.min_length", 1, MAX_TASK_LENGTH)
    limits.check_int(task.max_length, "task.max_length", 1, MAX_TASK_LENGTH)
    limits.check_int(task.num_eval_examples, "task.num_eval_examples", 1, MAX_EVAL_EXAMPLES)
    if task.symbols is not None and len(task.symbols) > 10_000:
        raise ConfigError(f"task.symbols holds {len(task.symbols):,} characters; give at most 10,000")


@writes_run("train")
def train_task(
    out_dir: str | Path,
    *,
    task: TaskConfig,
    model: TaskModelConfig,
    train: TrainConfig,
    resume: bool = False,
    beam_width: int = 4,
    length_penalty: float = 1.0,
) -> dict[str, Any]:
    """Train a `Seq2Seq` (or an `RNNSeq2Seq`) on a generated task; the run folder becomes a checkpoint.

    Args:
        out_dir: run folder (metrics.jsonl, results.json, predictions.txt, checkpoint files).
        task: which task and its sizes.
        model: architecture, a `Seq2SeqConfig` or an `RNNSeq2SeqConfig` (vocab_size and special
            ids are taken from the task tokenizer; ignored when resuming, which continues the
            checkpoint's own model).
        train: optimisation settings (`train.eval_interval` also sets how often exact match runs).
        resume: continue the run in `out_dir` where its checkpoint stopped.
        beam_width: after training, also score the held-out examples with beam search of this
            width (`exact_match_beam`); 1 or less skips it.
        length_penalty: beam search's length penalty.
    Returns:
        The results dict (also in out_dir/results.json), with `exact_match` (greedy) and
        `exact_match_beam`.
    """
    from attnlab.models import registry
    from attnlab.models.registry import load_model
    from attnlab.train.engine import TorchEngine
    from attnlab.utils import seed_everything

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {str(out_dir)!r} is a file; pass a folder for the run")
    check_task_bounds(task)
    the_task = make_task(task)
    seed_everything(train.seed)
    if resume:
        saved = ckpt.read_metadata(out_dir)
        if not registry.has_capability(saved["model_type"], "encoder_decoder"):
            raise CheckpointError(
                f"cannot resume {str(out_dir)!r}: it holds a {saved['model_type']} model, not a seq2seq one"
            )
        net, tokenizer = load_model(out_dir, expect=registry.model_types("encoder_decoder"))
        net.train()
        if tokenizer is None:
            raise CheckpointError(f"cannot resume {str(out_dir)!r}: its tokenizer is missing")
        model = net.config
    else:
        if out_dir.is_dir() and ckpt.is_checkpoint(out_dir):
            raise ConfigError(
                f"{str(out_dir)!r} already holds a trained model; pass --resume to continue it, or choose a new --out"
            )
        tokenizer = task_tokenizer(the_task)
        model = _fit_model_to_task(model, the_task, tokenizer)
        # Before anything is allocated: a model (or batch) that cannot fit is one line, not a crash.
        from attnlab.models.memory import check_training_memory

        if isinstance(model, Seq2SeqConfig):  # the estimate knows transformers; the recurrent models are small
            check_training_memory(
                model, train.batch_size, device=train.device, what="the seq2seq model", eval_batches=train.eval_iters
            )
        net = registry.model_class(registry.model_type_for_config(model, "encoder_decoder") or "seq2seq")(model)
    data = TaskData(the_task, tokenizer)
    engine = TorchEngine(
        net,
        lr=train.lr,
        betas=(train.beta1, train.beta2),
        eps=train.eps,
        weight_decay=train.weight_decay,
        grad_clip=train.grad_clip,
        device=train.device,
        precision=train.precision,
        distributed=False,
    )
    examples = data.eval_examples

    def exact_match_hook() -> dict[str, float]:
        return {"exact_match": evaluate_exact_match(engine.module, tokenizer, examples)["exact_match"]}

    run_info = {
        "command": "train",
        "task": to_dict(task),
        "model": to_dict(model),
        "train": to_dict(train),
        "num_eval_examples": len(examples),
    }
    logger.info(
        "training a %s-parameter seq2seq model on the %s task (%s); %d held-out examples",
        f"{engine.num_parameters():,}",
        task.name,
        the_task.description,
        len(examples),
    )
    trainer = Trainer(
        engine,
        data,
        train,
        out_dir,
        tokenizer=tokenizer,
        metadata={"task": to_dict(task)},
        eval_hook=exact_match_hook,
        run_info=run_info,
    )
    if train.eval_interval == 0:
        logger.info("train.eval_interval = 0: exact match is measured once, at the end")
    results = trainer.fit(resume=resume)  # TrainingInterrupted propagates after the checkpoint is saved

    greedy = evaluate_exact_match(engine.module, tokenizer, examples)
    results.update(task=task.name, num_eval_examples=len(examples), exact_match=greedy["exact_match"])
    if beam_width > 1:
        beam = evaluate_exact_match(
            engine.module, tokenizer, examples, beam_width=beam_width, length_penalty=length_penalty
        )
        results.update(exact_match_beam=beam["exact_match"], beam_width=beam_width, length_penalty=length_penalty)
    write_json_atomic(out_dir / RESULTS_FILE, results)
    lines = [f"held-out examples of the {task.name} task (greedy decoding): source -> prediction"]
    for source, target, pred in greedy["predictions"][:25]:
        lines.append(f"{source!r} -> {pred!r}" + ("" if pred == target else f"   WRONG, expected {target!r}"))
    write_text_atomic(out_dir / PREDICTIONS_FILE, "\n".join(lines) + "\n")
    return results
