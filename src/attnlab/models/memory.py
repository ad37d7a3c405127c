"""How big a model is before it exists: parameter counts and training memory from a config.

A config such as `--model.embed_dim=4000000` describes a model of trillions of weights;
building it would make PyTorch fail deep inside an allocation (or make the machine swap
for minutes). `check_training_memory` estimates the memory a training run needs and
refuses, with one line naming the estimate and what the machine has, before anything
is allocated. Torch-free: the estimate is arithmetic on the config.

The estimate (float32 training with AdamW):
  * weights, gradients and AdamW's two moments: 4 copies x 4 bytes = 16 bytes a parameter;
  * activations kept for the backward pass, per layer and token, roughly those of
    Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer
    Models", section 4.1) in float32: about 18 C values (LayerNorm inputs, q, k, v,
    attention output, the 4C-wide feed-forward hidden state twice, residuals) plus
    2 H T attention probabilities (softmax output and its dropout mask) for the unfused
    attention path; and the logits with their softmax and gradient, 3 V values a token.
It is rough on purpose (allocator overhead, fused kernels and the framework itself
are left out) and errs on the large side for the attention term.

The parameter counts are exact for `GPTConfig`, `LlamaConfig` (and any decoder-only LM whose
blocks come from `block_kwargs()`), `EncoderConfig`, `Seq2SeqConfig` and `ViTConfig` (the
tests compare them with the models built in PyTorch).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from attnlab.errors import ConfigError

logger = logging.getLogger(__name__)

BYTES_PER_FLOAT32 = 4
TRAINING_COPIES = 4  # weights, gradients, AdamW first and second moments
ACTIVATION_FLOATS_PER_CHANNEL = 18  # per layer and token, times embed_dim (see the module docstring)
ATTENTION_FLOATS_PER_HEAD_AND_KEY = 2  # per layer, token, head and key: softmax output and dropout mask
LOGIT_FLOATS_PER_TOKEN = 3  # times vocab_size: logits, their softmax, their gradient
BYTES_PER_TOKEN_ID = 8  # int64 token ids
ARRAYS_PER_BATCH = 2  # inputs and targets of a stored evaluation batch
HEADROOM = 0.9  # refuse when the estimate exceeds this share of the available memory


# --------------------------------------------------------------------------- counting


def _linear(n_in: int, n_out: int, bias: bool = True) -> int:
    return n_in * n_out + (n_out if bias else 0)


def _norm(dim: int, bias: bool = True) -> int:
    return dim + (dim if bias else 0)


def _block(
    C: int,
    hidden: int,
    bias: bool,
    cross: bool = False,
    *,
    norm: str = "layer",
    feed_forward: str = "mlp",
    num_heads: int = 1,
    num_kv_heads: int | None = None,
) -> int:
    """Parameters of one `attnlab.nn.block.TransformerBlock` (its keyword arguments' names)."""
    norm_size = _norm(C, bias) if norm == "layer" else C  # RMSNorm: a gain, no bias
    kv = C if num_kv_heads is None else num_kv_heads * (C // num_heads)  # grouped-query: G heads of C / H
    n = norm_size + _linear(C, C + 2 * kv, bias) + _linear(C, C, bias)  # norm1, qkv, out
    if cross:
        n += norm_size + _linear(C, C, bias) + _linear(C, 2 * C, bias) + _linear(C, C, bias)  # q, kv, out
    if feed_forward == "none":
        return n  # an attention-only block: no norm2, no feed-forward
    n += norm_size
    if feed_forward == "swiglu":
        n += 2 * _linear(C, hidden, bias) + _linear(hidden, C, bias)  # norm2, w_gate, w_up, w_down
    else:
        n += _linear(C, hidden, bias) + _linear(hidden, C, bias)  # norm2, fc1, fc2
    return n


def _config_block(c: Any) -> int:
    """`_block` of the blocks `attnlab.nn.stack.block_stack(c)` builds, from `c.block_kwargs()`."""
    k = c.block_kwargs()
    return _block(
        k["embed_dim"],
        k["hidden_dim"],
        k["bias"],
        norm=k.get("norm", "layer"),
        feed_forward=k.get("feed_forward", "mlp"),
        num_heads=k["num_heads"],
        num_kv_heads=k.get("num_kv_heads"),
    )


def _positions(kind: str, max_len: int, C: int) -> int:
    return max_len * C if kind == "learned" else 0  # fixed tables and rotary are buffers


def decoder_lm_parameters(c: Any) -> int:
    """Parameters of a decoder-only language model built from `c` (tied weights counted once).

    Exact for `attnlab.models.gpt.GPT` and `attnlab.models.llama.Llama`, and for any causal LM
    made the same way: token embedding, position table (learned only), `block_stack(c)`, a
    final norm of the blocks' kind (pre-norm), an output head unless tied.
    """
    C = c.embed_dim
    n = c.vocab_size * C + _positions(c.positional, c.max_seq_len, C)
    n += c.num_layers * _config_block(c)
    if c.norm_first:
        n += _norm(C, c.bias) if c.block_kwargs().get("norm", "layer") == "layer" else C
    n += 0 if c.tie_weights else c.vocab_size * C
    return n


gpt_parameters = decoder_lm_parameters  # the GPT's count (the name the tests and callers use)


def encoder_parameters(c: Any) -> int:
    """Parameters of `attnlab.models.encoder.Encoder(c)`."""
    C = c.embed_dim
    n = c.vocab_size * C + _positions(c.positional, c.max_seq_len, C) + c.type_vocab_size * C
    n += _norm(C, c.bias) if c.embed_norm else 0
    n += c.num_layers * _block(C, c.hidden_dim, c.bias)
    n += _norm(C, c.bias) if c.final_norm else 0
    if c.head == "mlm":
        n += _linear(C, C, c.bias) + _norm(C, c.bias) + c.vocab_size  # dense, norm, output bias
        n += 0 if c.tie_weights else c.vocab_size * C
    elif c.head in ("sequence", "token"):
        n += _linear(C, c.num_labels)
    return n


def seq2seq_parameters(c: Any) -> int:
    """Parameters of `attnlab.models.seq2seq.Seq2Seq(c)`."""
    C = c.embed_dim
    n = c.vocab_size * C
    n += _positions(c.positional, c.max_source_len, C) + _positions(c.positional, c.max_target_len, C)
    n += c.num_encoder_layers * _block(C, c.hidden_dim, c.bias)
    n += c.num_decoder_layers * _block(C, c.hidden_dim, c.bias, cross=True)
    n += 2 * _norm(C, c.bias) if c.norm_first else 0
    n += 0 if c.tie_weights else c.vocab_size * C
    return n


def vit_parameters(c: Any) -> int:
    """Parameters of `attnlab.models.vit.ViT(c)`."""
    C = c.embed_dim
    n = _linear(c.in_channels * c.patch_size**2, C) + C + c.seq_len * C  # patch projection, CLS, positions
    n += c.num_layers * _block(C, c.hidden_dim, True)
    n += _norm(C) if c.norm_first else 0
    n += _linear(C, c.num_classes)
    return n


@dataclass(frozen=True)
class Shape:
    """What the activation estimate needs to know about a model."""

    parameters: int  # exact parameter count
    layers: int  # transformer blocks a token passes (encoder + decoder for seq2seq)
    embed_dim: int  # C
    heads: int  # H
    seq_len: int  # longest sequence T a block sees
    vocab_size: int  # V of the output layer (classes for a classifier)
    buffers: int = 0  # floats in fixed position tables


def model_shape(config: Any) -> Shape:
    """Parameters and sizes of the model `config` describes (encoder, seq2seq, ViT or a decoder-only LM).

    Raises:
        TypeError: for a config of another kind.
    """
    name = type(config).__name__
    if name == "EncoderConfig":
        fixed = config.max_seq_len * config.embed_dim if config.positional in ("sinusoidal", "fourier") else 0
        out = config.vocab_size if config.head == "mlm" else config.num_labels
        return Shape(
            encoder_parameters(config),
            config.num_layers,
            config.embed_dim,
            config.num_heads,
            config.max_seq_len,
            out,
            fixed,
        )
    if name == "Seq2SeqConfig":
        T = max(config.max_source_len, config.max_target_len)
        fixed = (
            (config.max_source_len + config.max_target_len) * config.embed_dim
            if config.positional in ("sinusoidal", "fourier")
            else 0
        )
        return Shape(
            seq2seq_parameters(config),
            config.num_encoder_layers + 2 * config.num_decoder_layers,
            config.embed_dim,
            config.num_heads,
            T,
            config.vocab_size,
            fixed,
        )
    if name == "ViTConfig":
        return Shape(
            vit_parameters(config),
            config.num_layers,
            config.embed_dim,
            config.num_heads,
            config.seq_len,
            config.num_classes,
        )
    if all(hasattr(config, a) for a in ("block_kwargs", "vocab_size", "max_seq_len", "tie_weights", "positional")):
        # a decoder-only LM (GPT, LLaMA, ...): counted from its blocks' shape, no code per model
        fixed = config.max_seq_len * config.embed_dim if config.positional in ("sinusoidal", "fourier") else 0
        return Shape(
            decoder_lm_parameters(config),
            config.num_layers,
            config.embed_dim,
            config.num_heads,
            config.max_seq_len,
            config.vocab_size,
            fixed,
        )
    raise TypeError(f"no parameter count for {name}")


def count_parameters(config: Any) -> int:
    """Exact number of parameters of the model `config` describes, without building it."""
    return model_shape(config).parameters


def training_bytes(
    config: Any, batch_size: int, *, bytes_per_value: int = BYTES_PER_FLOAT32, eval_batches: int = 0
) -> dict[str, int]:
    """Rough memory of training the model `config` describes with AdamW (see the module docstring).

    Args:
        config: a GPT, encoder, seq2seq or ViT config.
        batch_size: sequences per micro-batch.
        bytes_per_value: 4 for float32.
        eval_batches: fixed evaluation batches kept in memory for the whole run
            (`train.eval_iters`; the Trainer draws them once), each of `batch_size` sequences.
    Returns:
        {"parameters", "weights_and_optimizer", "activations", "eval_batches", "total"} (bytes,
        except parameters).
    """
    s = model_shape(config)
    B, T, C = batch_size, s.seq_len, s.embed_dim
    weights = TRAINING_COPIES * bytes_per_value * s.parameters + bytes_per_value * s.buffers
    per_layer = B * T * (ACTIVATION_FLOATS_PER_CHANNEL * C + ATTENTION_FLOATS_PER_HEAD_AND_KEY * s.heads * T)
    activations = bytes_per_value * (s.layers * per_layer + LOGIT_FLOATS_PER_TOKEN * B * T * s.vocab_size)
    stored = eval_batches * B * T * ARRAYS_PER_BATCH * BYTES_PER_TOKEN_ID
    return {
        "parameters": s.parameters,
        "weights_and_optimizer": weights,
        "activations": activations,
        "eval_batches": stored,
        "total": weights + activations + stored,
    }


# --------------------------------------------------------------------------- the machine


def available_memory() -> int | None:
    """Bytes of memory this process can still use on the host, or None when unknown.

    psutil's `available` when installed; else /proc/meminfo's MemAvailable (Linux); else
    the physical memory (`os.sysconf`); None on platforms with none of these.
    """
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # not installed, or no answer on this platform
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def device_memory(device: str) -> tuple[int | None, str]:
    """(free bytes, a name for the memory) of the device that will train.

    A CUDA device reports its free memory through PyTorch (imported only then); every
    other device is judged by the host's memory (CPU, and Apple's unified memory).
    """
    if device.startswith("cuda") or device == "auto":
        try:
            import torch

            if torch.cuda.is_available():
                index = torch.device(device).index if device.startswith("cuda:") else None
                free, _ = torch.cuda.mem_get_info(index)
                return int(free), f"free GPU memory on {device if device != 'auto' else 'cuda'}"
        except Exception:  # no torch, no CUDA, a bad index: the host check below still runs
            pass
    return available_memory(), "available memory"


def _size(n: float) -> str:
    if n >= 2**40 * 10**6:  # beyond a million TiB the digits say nothing (and may not fit a float)
        return f"2**{int(n).bit_length() - 1} bytes"
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n / 2**10:,.1f} KiB"


def _count(n: int) -> str:
    if n >= 10**18:
        return f"about 10**{len(str(n)) - 1}"
    if n >= 10**12:
        return f"{n / 1e12:,.1f} trillion"
    if n >= 10**9:
        return f"{n / 1e9:,.1f} billion"
    if n >= 10**6:
        return f"{n / 1e6:,.1f} million"
    return f"{n:,}"


def check_training_memory(
    config: Any,
    batch_size: int,
    *,
    device: str = "cpu",
    available: int | None = None,
    what: str = "the model",
    eval_batches: int = 0,
) -> dict[str, int]:
    """Refuse (ConfigError) a model that would not fit in memory while training, before it is built.

    Args:
        config: the model config (GPT, encoder, seq2seq or ViT).
        batch_size: sequences per micro-batch (train.batch_size).
        device: the training device (`train.device`); CUDA devices are judged by their free memory.
        available: bytes to compare with (tests); default: asked from the machine. When the
            machine cannot tell, nothing is refused.
        what: the model's name in the message.
        eval_batches: evaluation batches kept for the whole run (`train.eval_iters`).
    Returns:
        The estimate (see `training_bytes`).
    Raises:
        ConfigError: naming the parameter count, the estimate and the available memory, and
            suggesting smaller settings.
    """
    estimate = training_bytes(config, batch_size, eval_batches=eval_batches)
    where = "available memory"
    if available is None:
        available, where = device_memory(device)
    if available is None:
        logger.debug("memory check skipped: this platform does not report its memory")
        return estimate
    if estimate["total"] > HEADROOM * available:
        parts = {key: estimate[key] for key in ("weights_and_optimizer", "activations", "eval_batches")}
        biggest = max(parts, key=parts.__getitem__)
        fix = {
            "activations": "a smaller --train.batch_size or a shorter context (--model.max_seq_len)",
            "weights_and_optimizer": "a smaller --model.embed_dim or --model.num_layers (or a smaller vocabulary)",
            "eval_batches": "a smaller --train.eval_iters or --train.batch_size",
        }[biggest]
        stored = (
            f", {_size(estimate['eval_batches'])} for {eval_batches:,} evaluation batches"
            if estimate["eval_batches"]
            else ""
        )
        raise ConfigError(
            f"{what} has {_count(estimate['parameters'])} parameters and training it needs about "
            f"{_size(estimate['total'])} ({_size(estimate['weights_and_optimizer'])} for weights, gradients and AdamW "
            f"state, {_size(estimate['activations'])} for activations at batch size {batch_size:,}{stored}), but this "
            f"machine has {_size(available)} of {where}; choose {fix}"
        )
    return estimate
