"""Recipes: what `attnlab train`, `attnlab eval` and `attnlab demo` do, as library calls.

A recipe wires data, tokenizer, model, engine and Trainer together; the CLI only
turns flags into config dataclasses (`DataConfig`, `TrainConfig` and the model's own) and
calls these functions, so a notebook can run exactly what the command line runs.

The language-model recipes train, evaluate and sample any causal LM of the registry
(`attnlab.models.registry.model_types("causal_lm")`: the GPT, the LLaMA-style model, ...);
the model config's class chooses the model. The NumPy engine runs the GPT and the LLaMA-style model.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from attnlab import checkpoint as ckpt
from attnlab.config import from_dict, to_dict
from attnlab.configs.data import DataConfig
from attnlab.errors import CheckpointError, ConfigError, DataError
from attnlab.models import registry
from attnlab.runs import open_run, writes_run
from attnlab.train.trainer import TrainConfig, Trainer, read_metrics

logger = logging.getLogger(__name__)


def build_tokenizer_for(data: DataConfig, text: str) -> Any:
    """Train the tokenizer `data.tokenizer` on `text`."""
    from attnlab.tokenizers import build_tokenizer, registered_kinds

    if data.tokenizer not in registered_kinds():
        raise ConfigError(f"unknown tokenizer {data.tokenizer!r}; choose one of: {', '.join(registered_kinds())}")
    options: dict[str, Any] = {}
    if data.tokenizer == "word":
        options["max_vocab"] = data.vocab_size or 2000
    elif data.tokenizer == "bpe":
        options["vocab_size"] = data.vocab_size or 1024
    elif data.vocab_size is not None:
        raise ConfigError(f"data.vocab_size applies to the word and bpe tokenizers, not {data.tokenizer!r}")
    return build_tokenizer(data.tokenizer, text, **options)


def encode_corpus(tokenizer: Any, text: str, source: str) -> np.ndarray:
    """Token ids of a whole corpus, compact: see `attnlab.data.text.encode_text`.

    Args:
        tokenizer: the tokenizer to encode with.
        text: the corpus.
        source: its name (the file name), for messages and the token cache.
    Returns:
        (N,) ids of the smallest unsigned dtype that holds the vocabulary (uint8, uint16 or
        uint32); a read-only memory map of the token cache for a large corpus.
    Raises:
        DataError: the text holds characters the tokenizer does not know.
    """
    from attnlab.data.text import encode_text
    from attnlab.errors import UnknownCharactersError

    try:
        return encode_text(tokenizer, text, source)
    except UnknownCharactersError as e:
        raise DataError(
            f"{source}: {e}. The checkpoint's tokenizer was built on other text; evaluate on text written "
            "in the same characters"
        ) from None


def causal_lm_type(model_config: Any) -> str:
    """The registered causal-LM model type whose config `model_config` is ("gpt" for a GPTConfig).

    Raises:
        ConfigError: the config belongs to no registered causal language model.
    """
    model_type = registry.model_type_for_config(model_config, "causal_lm")
    if model_type is None:
        raise ConfigError(
            f"a {type(model_config).__name__} is not the config of a causal language model; "
            f"registered ones: {', '.join(registry.model_types('causal_lm'))}"
        )
    return model_type


def build_causal_lm(model_config: Any) -> Any:
    """A fresh PyTorch causal LM of `model_config` (its registered class)."""
    return registry.model_class(causal_lm_type(model_config))(model_config)


def causal_lm_config_class(arch: str) -> type:
    """The config dataclass of the causal LM `arch` (e.g. GPTConfig for "gpt").

    Raises:
        ConfigError: `arch` is not a registered causal LM, or its module is not installed.
    """
    choices = registry.model_types("causal_lm")
    if arch not in choices:
        raise ConfigError(f"unknown causal language model {arch!r}; choose one of: {', '.join(choices)}")
    try:
        return registry.config_class(arch)
    except ImportError as e:
        raise ConfigError(f"the {arch} architecture is not available in this install ({e})") from None


def check_numpy_engine(model_type: str, what: str = "the numpy engine") -> None:
    """The NumPy engine implements the GPT and the LLaMA-style model (`attnlab.scratch.gpt.MODEL_TYPES`):
    anything else is one ConfigError."""
    try:
        from attnlab.scratch.gpt import MODEL_TYPES  # torch-free
    except ModuleNotFoundError as e:  # pragma: no cover - an install without the NumPy engine
        raise ConfigError(f"the numpy engine is not available in this install ({e})") from None
    if model_type not in MODEL_TYPES:
        raise ConfigError(
            f"{what} runs only {' and '.join(MODEL_TYPES)} models, not a {model_type} model; use --engine torch"
        )


def make_engine(name: str, model_config: Any, train: TrainConfig, init_from: str | Path | None = None) -> Any:
    """Build the training engine `torch` or `numpy` for a causal LM (fresh or from a checkpoint)."""
    from attnlab.utils import seed_everything

    if name == "numpy":
        check_numpy_engine(causal_lm_type(model_config))
    seed_everything(train.seed)
    if name == "torch":
        from attnlab.models.registry import load_model
        from attnlab.train.engine import TorchEngine

        if init_from is not None:
            model, _ = load_model(init_from, expect=registry.model_types("causal_lm"))
        else:
            model = build_causal_lm(model_config)
        return TorchEngine(
            model,
            lr=train.lr,
            betas=(train.beta1, train.beta2),
            eps=train.eps,
            weight_decay=train.weight_decay,
            grad_clip=train.grad_clip,
            device=train.device,
            precision=train.precision,
        )
    if name == "numpy":
        try:
            from attnlab.train.numpy_engine import NumpyEngine
        except ModuleNotFoundError as e:  # pragma: no cover - until the NumPy engine lands
            raise ConfigError(f"the numpy engine is not available in this install ({e})") from None
        return NumpyEngine.for_gpt(model_config, train, init_from=init_from)
    raise ConfigError(f"unknown engine {name!r}; choose torch or numpy")


@writes_run("train")
def train_language_model(
    out_dir: str | Path,
    *,
    data: DataConfig,
    model: Any,
    train: TrainConfig,
    engine: str = "torch",
    resume: bool = False,
    write_plots: bool = True,
) -> dict[str, Any]:
    """Train a causal language model (GPT, LLaMA-style, ...) on a text corpus; the run folder becomes a checkpoint.

    Args:
        out_dir: run folder (metrics.jsonl, results.json, checkpoint files, plots).
        data: corpus and tokenizer.
        model: the architecture: the config of a registered causal LM (e.g. a GPTConfig);
            vocab_size is taken from the tokenizer. With `resume`, the checkpoint's is used.
        train: optimisation settings.
        engine: "torch" or "numpy" (the GPT and the LLaMA-style model).
        resume: continue the run in `out_dir` exactly where its checkpoint stopped.
        write_plots: write loss_curve.png at the end.
    Returns:
        The results dict (also written to out_dir/results.json).
    """
    from attnlab.data.text import LMData, load_text

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {str(out_dir)!r} is a file; pass a folder for the run")
    tokenizer = None
    init_from = None
    if resume:
        saved = ckpt.read_model(out_dir)
        if not registry.has_capability(saved.model_type, "causal_lm"):
            raise CheckpointError(
                f"cannot resume {str(out_dir)!r}: it holds a {saved.model_type} model, not a GPT "
                f"or another causal language model ({', '.join(registry.model_types('causal_lm'))})"
            )
        tokenizer = saved.tokenizer
        model = from_dict(registry.config_class(saved.model_type), saved.config, section="model")
        init_from = out_dir
    elif out_dir.is_dir() and ckpt.is_checkpoint(out_dir):
        raise ConfigError(
            f"{str(out_dir)!r} already holds a trained model; pass --resume to continue it, or choose a new --out"
        )
    source = load_text(data.source)
    if tokenizer is None:
        tokenizer = build_tokenizer_for(data, source.text)
    ids = encode_corpus(tokenizer, source.text, source.name)
    model = dataclasses.replace(model, vocab_size=tokenizer.vocab_size)
    model_type = causal_lm_type(model)
    if engine == "numpy":
        check_numpy_engine(model_type)
    # Before anything is allocated: a model (or batch) that cannot fit is one line, not a crash.
    from attnlab.models.memory import check_training_memory

    try:
        check_training_memory(
            model,
            train.batch_size,
            device=train.device if engine == "torch" else "cpu",
            what=f"the {registry.model_label(model_type)}",
            eval_batches=train.eval_iters,
        )
    except TypeError:  # no size arithmetic for this architecture yet: nothing is refused
        logger.debug("memory check skipped: no estimate for a %s", type(model).__name__)
    lm_data = LMData(ids, model.max_seq_len, train.val_fraction)
    eng = make_engine(engine, model, train, init_from=init_from)
    run_info = {
        "command": "train",
        "engine": engine,
        "data": {**to_dict(data), "origin": source.origin, "num_tokens": int(len(ids))},
        "model": to_dict(model),
        "train": to_dict(train),
    }
    logger.info(
        "training a %s-parameter %s on %s (%s tokens, %s tokenizer, vocab %d) with the %s engine",
        f"{eng.num_parameters():,}",
        registry.model_label(model_type),
        source.name,
        f"{len(ids):,}",
        data.tokenizer,
        tokenizer.vocab_size,
        engine,
    )
    trainer = Trainer(
        eng,
        lm_data,
        train,
        out_dir,
        tokenizer=tokenizer,
        metadata={"data_source": source.name, "tokenizer_kind": getattr(tokenizer, "kind", None)},
        run_info=run_info,
    )
    try:
        results = trainer.fit(resume=resume)
    finally:
        if write_plots and trainer.is_main and out_dir.is_dir():
            _write_loss_plot(out_dir)
        close = getattr(eng, "close", None)
        if close is not None:
            close()
    return results


def _write_loss_plot(out_dir: Path) -> Path | None:
    records = read_metrics(out_dir)
    if not records:
        return None
    from attnlab.viz.curves import plot_loss_curves

    return plot_loss_curves({out_dir.name: records}, out_dir / "loss_curve.png")


def evaluate_checkpoint(
    checkpoint: str | Path,
    source: str,
    *,
    engine: str = "torch",
    split: str = "val",
    batch_size: int = 32,
    val_fraction: float = 0.1,
) -> dict[str, Any]:
    """Loss and perplexity of a causal-LM checkpoint (GPT, LLaMA-style, ...) on a corpus split (every window once).

    Args:
        checkpoint: checkpoint folder (from either engine).
        source: corpus name or text file path.
        engine: evaluate with the "torch" or the "numpy" implementation (the GPT and the LLaMA-style model).
        split: "val" (the last `val_fraction` of the text), "train" or "all".
        batch_size: windows per forward pass.
    """
    from attnlab.data.text import LMData, load_text

    if split not in ("val", "train", "all"):
        raise ConfigError(f"unknown split {split!r}; choose val, train or all")
    meta = ckpt.read_metadata(checkpoint)
    if not registry.has_capability(meta["model_type"], "causal_lm"):
        raise CheckpointError(
            f"{str(checkpoint)!r} holds a {meta['model_type']} model; `eval` needs a GPT "
            f"(language model: {', '.join(registry.model_types('causal_lm'))})"
        )
    if engine == "numpy":
        check_numpy_engine(meta["model_type"], "`eval --engine numpy`")
    text = load_text(source)
    if engine == "torch":
        import torch

        from attnlab.models.registry import load_model

        model, tokenizer = load_model(checkpoint, expect=registry.model_types("causal_lm"))

        def batch_loss(batch: dict[str, np.ndarray]) -> float:
            with torch.no_grad():
                out = model(torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["targets"]))
            return float(out.loss)

        seq_len = model.config.max_seq_len
    elif engine == "numpy":
        try:
            from attnlab.scratch.gpt import NumpyGPT
        except ModuleNotFoundError as e:  # pragma: no cover
            raise ConfigError(f"the numpy engine is not available in this install ({e})") from None
        np_model = NumpyGPT.from_checkpoint(checkpoint)
        np_model.eval()
        tokenizer = ckpt.read_model(checkpoint).tokenizer

        def batch_loss(batch: dict[str, np.ndarray]) -> float:
            _, loss = np_model.forward(batch["input_ids"], batch["targets"])
            return float(loss)

        seq_len = np_model.config.max_seq_len
    else:
        raise ConfigError(f"unknown engine {engine!r}; choose torch or numpy")
    if tokenizer is None:
        raise CheckpointError(f"{str(checkpoint)!r} has no tokenizer; it cannot read text")
    ids = encode_corpus(tokenizer, text.text, text.name)
    data = LMData(ids, seq_len, val_fraction)
    data.splits["all"] = ids
    total, count = 0.0, 0
    for batch in data.sweep(split, batch_size):
        n = batch["targets"].size
        total += batch_loss(batch) * n
        count += n
    loss = total / count
    return {
        "checkpoint": str(checkpoint),
        "data": text.name,
        "split": split,
        "engine": engine,
        "tokens": count,
        "loss": loss,
        "perplexity": math.exp(loss) if loss < 50 else float("inf"),
        "bits_per_token": loss / math.log(2),
    }


# ---------------------------------------------------------------------------
# The demo: `attnlab demo`
# ---------------------------------------------------------------------------


def calibrate_iterations(
    model_config: Any, train: TrainConfig, seconds: float, vocab_size: int, trials: int = 8
) -> tuple[int, float]:
    """How many optimizer steps fit in `seconds` on this machine (timed on a throwaway model).

    The step time is the lower quartile of `trials` timed steps: a burst of load from another
    program slows single steps, and a median over a few steps taken during such a burst
    once cut a 2-minute demo to 8 seconds. If the machine stays slow, the caller's
    `max_time` guard ends training.
    """
    import torch

    from attnlab.train.engine import TorchEngine

    cfg = dataclasses.replace(model_config, vocab_size=vocab_size)
    engine = TorchEngine(build_causal_lm(cfg), device=train.device, precision=train.precision, distributed=False)
    rng = np.random.default_rng(0)
    batch = {
        "input_ids": rng.integers(0, vocab_size, (train.batch_size, cfg.max_seq_len)),
        "targets": rng.integers(0, vocab_size, (train.batch_size, cfg.max_seq_len)),
    }
    engine.train_step([batch] * train.grad_accum_steps, 1e-4)  # warm-up (allocations, kernels)
    times: list[float] = []
    budget = time.perf_counter() + max(2.0, 0.25 * seconds)  # only very slow steps make it stop sooner
    while len(times) < trials and (len(times) < 2 or time.perf_counter() < budget):
        t0 = time.perf_counter()
        engine.train_step([batch] * train.grad_accum_steps, 1e-4)
        times.append(time.perf_counter() - t0)
    per_step = float(np.percentile(times, 25)) * 1.15  # evaluations and logging cost a little extra
    del engine
    torch.manual_seed(train.seed)
    from attnlab import limits

    # a week of a very fast model would exceed the step bound; the time limit ends it anyway
    return min(limits.MAX_ITERS, max(50, int(seconds / per_step))), per_step


def run_demo(
    out_dir: str | Path | None = None,
    *,
    source: str | None = None,
    seconds: float = 120.0,
    seed: int = 1337,
    temperatures: tuple[float, float] = (0.5, 1.0),
    sample_tokens: int = 300,
    preset: str = "baby",
    force: bool = False,
    arch: str = "gpt",
) -> dict[str, Any]:
    """Train a small GPT (or another causal LM of the registry) for about `seconds`, print samples, write plots.

    Args:
        arch: the causal LM's model type (`attnlab.models.registry.model_types("causal_lm")`).
        force: write into a folder that holds files attnlab did not write (they are kept).
    Returns:
        dict with the run folder, results, samples and figure paths.
    """
    from attnlab.data.text import DEFAULT_CORPUS, load_text
    from attnlab.generate import SamplingConfig, generate_text
    from attnlab.models.registry import load_model

    if not seconds > 0:
        raise ConfigError(f"--seconds must be positive, got {seconds}")
    source = source or DEFAULT_CORPUS
    if out_dir is None:
        out_dir = Path("runs") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    out_dir = Path(out_dir)
    with open_run(out_dir, command="demo", force=force):  # one writer, never the user's folder
        text = load_text(source)
        data = DataConfig(source=source, tokenizer="char")
        tokenizer = build_tokenizer_for(data, text.text)
        model = causal_lm_config_class(arch).from_name(preset)
        base = TrainConfig(seed=seed, eval_interval=0, eval_iters=10)
        iters, per_step = calibrate_iterations(model, base, seconds, tokenizer.vocab_size)
        iters = max(50, int(iters / 1.1))  # 8 evaluations of 10 batches cost about 10% more
        train = dataclasses.replace(
            base,
            max_iters=iters,
            warmup_iters=min(100, max(1, iters // 10)),
            eval_interval=max(1, iters // 8),
            max_time=seconds * 1.5,  # a guard if the machine slows down; the schedule assumes `iters`
        )
        logger.info("demo: %d steps of ~%.0f ms fit in ~%.0f s on this machine", iters, per_step * 1000, seconds)
        results = train_language_model(out_dir, data=data, model=model, train=train)

        gpt, tok = load_model(out_dir, expect=registry.model_types("causal_lm"))
        prompt = _demo_prompt(text.text)
        samples = {}
        for t in temperatures:
            sampling = SamplingConfig(max_new_tokens=sample_tokens, temperature=t, seed=seed)
            samples[t] = generate_text(gpt, tok, prompt, sampling)
        from attnlab.utils import write_text_atomic

        write_text_atomic(
            out_dir / "samples.txt",
            "".join(f"=== temperature {t} ===\n{s}\n\n" for t, s in samples.items()),
        )
        attention_png = write_attention_figure(gpt, tok, samples[temperatures[0]][:24], out_dir / "attention.png")
        return {
            "out_dir": str(out_dir),
            "results": results,
            "samples": samples,
            "prompt": prompt,
            "figures": [str(out_dir / "loss_curve.png"), str(attention_png)],
        }


def _demo_prompt(text: str) -> str:
    """A prompt in the corpus's own alphabet: the first two words of a prose line."""
    for line in text.splitlines():
        words = line.strip().split()
        if len(words) >= 4 and all(w.isalpha() for w in words[:3]) and words[0][0].isupper():
            return " ".join(words[:2]) + " "
    return ""


def write_attention_figure(model: Any, tokenizer: Any, text: str, out: Path) -> Path:
    """Attention maps of every layer and head of `model` on `text` (at most its context)."""
    import torch

    from attnlab.viz.attention import plot_attention_grid

    ids = tokenizer.encode(text)[-min(model.config.max_seq_len, 24) :] or [0]
    with torch.no_grad():
        out_ = model(torch.tensor([ids]), output_attentions=True)
    labels = tokenizer.token_strings(ids)
    name = registry.model_label(model.model_type)
    title = f"attention of the trained {name} on {text[:40]!r}…"
    return plot_attention_grid(out_.attentions, labels, out, title=title)
