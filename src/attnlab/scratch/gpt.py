"""A GPT in NumPy with a hand-written backward pass: the same model as `attnlab.models.gpt.GPT`,
and, built from a `LlamaConfig`, the same model as `attnlab.models.llama.Llama`.

Reads top to bottom, exactly like the PyTorch models (Radford et al. 2018, 2019; Touvron et al. 2023):
    token ids (B, T)
      -> tok_emb[ids] + position information (a table, or rotary inside attention) (B, T, C)
      -> num_layers x TransformerBlock (causal self-attention)  (B, T, C)
      -> final norm of the blocks' kind (pre-norm models)       (B, T, C)
      -> lm_head (GPT: tied to tok_emb by default; LLaMA: untied) (B, T, V) logits
      -> mean cross-entropy against the targets (ignore_index -100)
`backward()` walks the same list in reverse. With weight tying the embedding matrix is
used twice (lookup at the bottom, output head at the top), so its gradient is the sum
of both uses.

`NumpyGPT` takes the same config (`GPTConfig`, or `LlamaConfig` for the LLaMA-style model:
RMSNorm, SwiGLU, grouped-query attention, rotary positions, via `config.block_kwargs()`),
has the same parameter names and shapes as the PyTorch model's `state_dict()`
(`tok_emb.weight`, `blocks.0.attn.qkv.weight`, ...) and the same initialisation scheme,
and reads and writes the same checkpoints: a checkpoint saved here loads into the PyTorch
model (`attnlab.models.registry.load_model`) and back. `MODEL_TYPES` lists the model
types it implements (scratch sits below `attnlab.models`, so it keeps its own torch-free
table of config class -> model type).

Notation: B batch, T time, C channels (embed_dim), V vocabulary, H heads.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from attnlab import checkpoint as ckpt
from attnlab.config import from_dict, to_dict
from attnlab.configs.base import TransformerConfig
from attnlab.configs.gpt import GPTConfig
from attnlab.configs.llama import LlamaConfig
from attnlab.configs.sampling import DEFAULT_MAX_NEW_TOKENS, DEFAULT_TEMPERATURE, SamplingConfig
from attnlab.errors import CheckpointError, ConfigError
from attnlab.scratch.attention import padding_mask
from attnlab.scratch.block import TransformerBlock, make_norm
from attnlab.scratch.layers import IGNORE_INDEX, CrossEntropyLoss, Dropout, Embedding, Linear, softmax
from attnlab.scratch.module import Module, as_float_dtype
from attnlab.scratch.positional import FixedPositionalEncoding, LearnedPositionalEmbedding

__all__ = ["NumpyGPT", "load_numpy_gpt", "IGNORE_INDEX", "MODEL_TYPES", "model_type_of", "config_class_of"]

logger = logging.getLogger(__name__)

TIED = {"lm_head.weight": "tok_emb.weight"}  # alias -> original when config.tie_weights

# config class -> model type (the registry's names, `attnlab.models.registry`), torch-free
_CONFIG_MODEL_TYPES: dict[type[TransformerConfig], str] = {GPTConfig: "gpt", LlamaConfig: "llama"}
MODEL_TYPES: tuple[str, ...] = tuple(_CONFIG_MODEL_TYPES.values())  # what the NumPy engine implements


def model_type_of(config: Any) -> str:
    """The model type ("gpt", "llama") that `NumpyGPT` builds from `config`.

    Raises:
        ConfigError: a config of a model the NumPy engine does not implement.
    """
    model_type = _CONFIG_MODEL_TYPES.get(type(config))
    if model_type is None:
        raise ConfigError(
            f"the NumPy engine builds {', '.join(MODEL_TYPES)} models only, not one from a {type(config).__name__}"
        )
    return model_type


def config_class_of(model_type: str) -> type[TransformerConfig]:
    """The config class of `model_type` (one of `MODEL_TYPES`); KeyError for any other."""
    for config_class, name in _CONFIG_MODEL_TYPES.items():
        if name == model_type:
            return config_class
    raise KeyError(model_type)


class NumpyGPT(Module):
    """Decoder-only transformer language model in NumPy: the GPT or the LLaMA-style model.

    Args:
        config: a `GPTConfig` (the PyTorch GPT's, any positional kind) or a `LlamaConfig`
            (`attnlab.models.llama.Llama`'s); the config's class sets `model_type`.
        dtype: np.float32 (default) or np.float64 (for exact comparisons).
        seed: seeds the initialisation and the dropout masks.

    Attributes:
        params: dict name -> array of every parameter (a tied array is listed once).
        grads: dict name -> gradient, filled by `backward`.
        model_type: "gpt" or "llama" (the checkpoint's model type).
    """

    model_type = "gpt"  # the default; an instance built from another config sets its own

    def __init__(self, config: GPTConfig | LlamaConfig, dtype=np.float32, seed: int = 0):
        super().__init__()
        self.model_type = model_type_of(config)
        self.config = c = config
        self.dtype = dtype = as_float_dtype(dtype)
        init_rng, dropout_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        self.dropout_rng = dropout_rng  # one generator shared by every dropout layer
        std = c.init_std
        # GPT-2: the two projections writing into the residual stream get 1/sqrt(2 * layers)
        residual_std = std / math.sqrt(2 * c.num_layers)

        self.tok_emb = Embedding(c.vocab_size, c.embed_dim, dtype=dtype, rng=init_rng, init_std=std)
        if c.positional == "learned":
            self.pos_emb: Module | None = LearnedPositionalEmbedding(
                c.max_seq_len, c.embed_dim, dtype=dtype, rng=init_rng, init_std=std
            )
        elif c.positional in ("sinusoidal", "fourier"):
            self.pos_emb = FixedPositionalEncoding(c.max_seq_len, c.embed_dim, c.positional, dtype=dtype)
        else:
            self.pos_emb = None
        self.drop = Dropout(c.dropout, dropout_rng)
        block_kwargs = c.block_kwargs()  # GPT: LayerNorm + MLP; LLaMA: RMSNorm + SwiGLU + num_kv_heads
        if block_kwargs.get("feed_forward") == "none":
            raise ConfigError("an attention-only GPT (model.attn_only = true) runs in the PyTorch engine only")
        self.blocks = [
            TransformerBlock(
                **block_kwargs,
                dtype=dtype,
                rng=init_rng,
                init_std=std,
                out_init_std=residual_std,
                dropout_rng=dropout_rng,
                rope_base=c.rope_base if c.positional == "rotary" else None,
            )
            for _ in range(c.num_layers)
        ]
        # pre-norm blocks leave the stream un-normalised, so a final norm precedes the head
        norm_kind = block_kwargs.get("norm", "layer")
        self.norm = make_norm(norm_kind, c.embed_dim, c.layer_norm_eps, c.bias, dtype=dtype) if c.norm_first else None
        self.lm_head = Linear(c.embed_dim, c.vocab_size, bias=False, dtype=dtype, rng=init_rng, init_std=std)
        if c.tie_weights:
            self.lm_head.params["weight"] = self.tok_emb.params["weight"]  # one array, two uses
        self.loss_fn = CrossEntropyLoss(IGNORE_INDEX)

    # -- parameters ----------------------------------------------------------------

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Every parameter by its PyTorch name (`GPT.state_dict()` names, tied head left out)."""
        return dict(self.named_parameters())

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """Every gradient by parameter name (after `backward`)."""
        return dict(self.named_grads())

    def state_dict(self) -> dict[str, np.ndarray]:
        """name -> parameter array (the arrays themselves, not copies, as in PyTorch)."""
        return self.params

    def load_state_dict(self, tensors: Mapping[str, Any], strict: bool = True) -> None:
        """Copy weights in (in place, cast to this model's dtype).

        Args:
            tensors: name -> array (NumPy arrays or anything `np.asarray` takes).
            strict: every parameter must be given and nothing else (a tied head alias
                `lm_head.weight` equal to `tok_emb.weight` is accepted and skipped).
        Raises:
            CheckpointError: missing, unexpected or wrongly shaped weights.
        """
        own = self.params
        given = {k: v for k, v in tensors.items() if not (self.config.tie_weights and k in TIED)}
        missing = sorted(set(own) - set(given))
        unexpected = sorted(set(given) - set(own))
        if strict and (missing or unexpected):
            raise CheckpointError(
                "weights do not match the model config: "
                + (f"missing {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}" if missing else "")
                + ("; " if missing and unexpected else "")
                + (
                    f"unexpected {', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}"
                    if unexpected
                    else ""
                )
            )
        for name, value in given.items():
            if name not in own:
                continue
            arr = np.asarray(value)
            if arr.shape != own[name].shape:
                raise CheckpointError(f"weight {name} has shape {arr.shape}, but the config needs {own[name].shape}")
            np.copyto(own[name], arr, casting="unsafe")  # in place: optimizers and tied aliases keep their array

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Two optimizer groups, as the PyTorch trainer makes them: matrices and embeddings
        (ndim >= 2) decay, biases and norm gains (ndim < 2) do not.

        Returns:
            [{"params", "names", "weight_decay": weight_decay}, {..., "weight_decay": 0.0}],
            ready for `attnlab.scratch.optim.AdamW`.
        """
        named = list(self.named_parameters())
        decay = [(n, p) for n, p in named if p.ndim >= 2]
        no_decay = [(n, p) for n, p in named if p.ndim < 2]
        return [
            {"params": [p for _, p in decay], "names": [n for n, _ in decay], "weight_decay": weight_decay},
            {"params": [p for _, p in no_decay], "names": [n for n, _ in no_decay], "weight_decay": 0.0},
        ]

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Parameter count (tied weights once); optionally without the position table."""
        n = sum(p.size for p in self.params.values())
        if exclude_embeddings and isinstance(self.pos_emb, LearnedPositionalEmbedding):
            n -= self.pos_emb.params["weight"].size
        return n

    # -- forward and backward --------------------------------------------------------

    def forward(
        self,
        input_ids: np.ndarray,
        targets: np.ndarray | None = None,
        *,
        attention_mask: np.ndarray | None = None,
        last_only: bool = False,
    ) -> tuple[np.ndarray, float | None]:
        """Next-token logits for every position, and the loss when targets are given.

        Args:
            input_ids: (B, T) integer token ids.
            targets: (B, T) next-token ids; -100 marks positions that are not scored.
            attention_mask: (B, T) with 1 for real tokens, 0 for padding (never attended to).
            last_only: logits of the last position only, (B, 1, V) (generation).
        Returns:
            (logits (B, T, V), mean cross-entropy loss as a float, or None without targets).
        """
        ids = np.asarray(input_ids)
        if ids.ndim != 2:
            raise ValueError(f"input_ids must be (batch, time), got shape {ids.shape}")
        B, T = ids.shape
        if T > self.config.max_seq_len and self.pos_emb is not None:
            raise ValueError(
                f"sequence of {T} tokens exceeds the context of {self.config.max_seq_len}; "
                "crop the input to the last max_seq_len tokens"
            )
        x = self.tok_emb(ids)  # (B, T, C)
        if self.pos_emb is not None:
            x = x + self.pos_emb(np.arange(T))  # (T, C) broadcast over the batch
        x = self.drop(x)
        mask = padding_mask(attention_mask) if attention_mask is not None else None  # (B, 1, 1, T)
        for block in self.blocks:
            x = block(x, mask=mask, is_causal=True)
        if self.norm is not None:
            x = self.norm(x)
        self._last_only, self._T = last_only, T
        if last_only:
            x = x[:, -1:, :]
        logits = self.lm_head(x)  # (B, T, V)
        loss = None
        if targets is not None:
            if last_only:
                raise ValueError("targets need the logits of every position; do not combine them with last_only")
            loss = self.loss_fn(logits, targets)
        self._has_loss = targets is not None
        return logits, loss

    def backward(self, scale: float = 1.0) -> dict[str, np.ndarray]:
        """Gradients of `scale * loss` for every parameter, after `forward(ids, targets)`.

        Gradients are *added* to those of earlier backward calls until `zero_grad()`,
        as in PyTorch, so gradient accumulation over micro-batches is `backward(1 / n)`
        after each of n forward passes.

        Returns:
            name -> gradient (the model's `grads`).
        """
        if not getattr(self, "_has_loss", False):
            raise RuntimeError("backward() needs a forward pass with targets first")
        self._has_loss = False
        dx = self.lm_head.backward(self.loss_fn.backward(scale))  # (B, T, C)
        if self.norm is not None:
            dx = self.norm.backward(dx)
        for block in reversed(self.blocks):
            dx = block.backward(dx)
        dx = self.drop.backward(dx)
        if self.pos_emb is not None:
            self.pos_emb.backward(dx)  # summed over the batch inside
        self.tok_emb.backward(dx)
        if self.config.tie_weights:
            # the head used the embedding matrix too: its gradient joins the lookup's
            self.tok_emb._accumulate("weight", self.lm_head._grads.pop("weight"))
        return self.grads

    def loss_and_grads(self, input_ids: np.ndarray, targets: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """zero_grad, forward and backward in one call: (loss, name -> gradient)."""
        self.zero_grad()
        _, loss = self.forward(input_ids, targets)
        return loss, self.backward()

    # -- generation --------------------------------------------------------------------

    def generate(
        self,
        input_ids: np.ndarray,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        *,
        temperature: float = DEFAULT_TEMPERATURE,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ) -> np.ndarray:
        """Continue each prompt by `max_new_tokens` tokens (the rules of `attnlab.configs.sampling`).

        Each step feeds the last `max_seq_len` tokens (no KV cache: the NumPy model
        recomputes the context) and picks the next token with `next_token_distribution`
        (temperature, top-k, top-p: the same rules and defaults as `attnlab.generate`).

        Args:
            input_ids: (B, T) prompt ids, T >= 1, or one prompt as a (T,) list or array.
            max_new_tokens: tokens to add.
            temperature: <= 0 means greedy (always the most likely token).
            top_k: keep only the k most likely tokens.
            top_p: keep the smallest set whose probability is >= top_p.
            seed: seed of the sampling generator (None = nondeterministic).
        Returns:
            (B, T + max_new_tokens) ids; (T + max_new_tokens,) for a single (T,) prompt.
        Raises:
            ConfigError: a setting out of range (the checks of `SamplingConfig`).
        """
        ids = np.asarray(input_ids, dtype=np.int64)
        single = ids.ndim == 1
        if single:
            ids = ids[None, :]  # (1, T)
        if ids.ndim != 2 or ids.shape[1] < 1:
            raise ValueError("input_ids must be (batch, time) or (time,) with at least one token")
        sampling = SamplingConfig(
            max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed
        )
        rng = np.random.default_rng(seed)
        was_training = self.training
        self.eval()
        try:
            for _ in range(sampling.max_new_tokens):
                logits, _ = self.forward(ids[:, -self.config.max_seq_len :], last_only=True)
                logits = logits[:, -1, :].astype(np.float64)  # (B, V)
                if sampling.greedy:
                    nxt = logits.argmax(axis=-1)
                else:
                    cumulative = next_token_distribution(logits, sampling).cumsum(axis=-1)
                    cumulative[:, -1] = 1.0  # guard against rounding
                    draws = rng.random((ids.shape[0], 1))
                    nxt = (cumulative < draws).sum(axis=-1)  # inverse-cdf sampling
                ids = np.concatenate([ids, nxt[:, None]], axis=1)
        finally:
            self.train(was_training)
        return ids[0] if single else ids

    # -- checkpoints -------------------------------------------------------------------

    def save(self, folder: str | Path, tokenizer: Any | None = None, metadata: Mapping[str, Any] | None = None) -> Path:
        """Write a checkpoint folder that `attnlab.models.registry.load_model` reads into the PyTorch model.

        Weights are saved in the model's dtype (float32 or float64); a tied head is saved once.
        """
        meta = {
            "engine": "numpy",
            "dtype": self.dtype.name,
            "tied": dict(TIED) if self.config.tie_weights else {},
            **(dict(metadata) if metadata else {}),
        }
        return ckpt.save_model(
            folder,
            model_type=self.model_type,
            config=to_dict(self.config),
            tensors=self.params,
            tokenizer=tokenizer,
            metadata=meta,
        )

    @classmethod
    def from_checkpoint(cls, folder: str | Path, dtype=np.float32, seed: int = 0) -> NumpyGPT:
        """Load a GPT or LLaMA checkpoint written by either engine (see `load_numpy_gpt` for the tokenizer too)."""
        model, _ = load_numpy_gpt(folder, dtype, seed=seed)
        return model


def load_numpy_gpt(folder: str | Path, dtype=np.float32, *, seed: int = 0) -> tuple[NumpyGPT, Any]:
    """Read a GPT or LLaMA checkpoint folder (from either engine) into a `NumpyGPT`.

    Args:
        folder: checkpoint folder.
        dtype: np.float32 or np.float64.
        seed: seed of the dropout generator (for training the loaded model further).
    Returns:
        (model in eval mode, tokenizer or None).
    Raises:
        CheckpointError: not a GPT or LLaMA checkpoint, or weights that do not match the config.
    """
    saved = ckpt.read_model(folder)
    if saved.model_type not in MODEL_TYPES:
        raise CheckpointError(
            f"{str(folder)!r} holds a {saved.model_type!r} model, but the NumPy engine loads only "
            + " or ".join(repr(t) for t in MODEL_TYPES)
            + " models"
        )
    try:
        config = from_dict(config_class_of(saved.model_type), saved.config, section="config")
    except ConfigError as e:
        raise CheckpointError(f"checkpoint config is invalid: {e}") from None
    model = NumpyGPT(config, dtype=dtype, seed=seed)
    try:
        model.load_state_dict(saved.tensors)
    except CheckpointError as e:
        raise CheckpointError(f"{str(folder)!r}: {e}") from None
    model.eval()
    return model, saved.tokenizer


def filter_logits(logits: np.ndarray, top_k: int | None = None, top_p: float | None = None) -> np.ndarray:
    """(B, V) logits with everything outside top-k / the top-p nucleus set to -inf.

    The NumPy twin of `attnlab.decoding.causal.filter_logits` (tested equal): top-k keeps
    every token tied with the k-th largest; top-p ranks tied tokens by id (the lower
    first) and always keeps the most likely token.
    """
    logits = np.array(logits, copy=True)
    if top_k is not None and top_k < logits.shape[-1]:
        kth = np.sort(logits, axis=-1)[:, -top_k][:, None]  # (B, 1) the k-th largest
        logits[logits < kth] = -np.inf
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-logits, axis=-1, kind="stable")  # most likely first; a tie: the lower id first
        sorted_probs = softmax(np.take_along_axis(logits, order, axis=-1), axis=-1)
        mass_before = np.cumsum(sorted_probs, axis=-1) - sorted_probs
        drop_sorted = mass_before >= top_p
        drop_sorted[:, 0] = False  # the most likely token always survives (a top_p that rounds to 0 too)
        drop = np.zeros_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, axis=-1)
        logits[drop] = -np.inf
    return logits


def next_token_distribution(logits: np.ndarray, sampling: SamplingConfig) -> np.ndarray:
    """(B, V) logits -> (B, V) probabilities after temperature, top-k and top-p.

    The NumPy twin of `attnlab.decoding.causal.next_token_distribution`: one-hot on the
    most likely token (the lowest id on a tie) when `sampling.greedy`; else the logits,
    shifted so that their maximum is 0 (a tiny temperature gives -inf, never NaN), are
    divided by the temperature and filtered.
    """
    logits = np.asarray(logits)
    if sampling.greedy:
        return np.eye(logits.shape[-1], dtype=logits.dtype)[logits.argmax(axis=-1)]
    logits = (logits - logits.max(axis=-1, keepdims=True)) / sampling.temperature
    return softmax(filter_logits(logits, sampling.top_k, sampling.top_p), axis=-1)
