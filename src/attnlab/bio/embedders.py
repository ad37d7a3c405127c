"""Embedders by name: protein language models (attnlab encoders, ESM-2) and the controls.

`make_embedder(spec)` turns one string into a `SequenceEmbedder` (`attnlab.bio.embedder_base`):

    "onehot"                 one-hot residues (21 columns)                 controls.OneHotEmbedder
    "composition"            residue fractions + length (22 columns)       controls.CompositionEmbedder
    "random"                 a transformer with random weights, fixed seed: EncoderEmbedder
    "random:PRESET"            ... of an `EncoderConfig` preset (default "protein-small")
    "random:CHECKPOINT|HF_DIR" ... of the same architecture as that model (its weights are
                               re-initialised, so only the shape is kept)
    CHECKPOINT               an attnlab encoder checkpoint with a protein (or DNA/RNA) tokenizer,
                             e.g. the output of `attnlab train --objective mlm --tokenizer protein`
    HF_DIR                   a local Hugging Face ESM-2 folder (`attnlab.interop.from_pretrained`)
    "org/name"               a Hugging Face hub name such as "facebook/esm2_t6_8M_UR50D"
                             (downloaded once when online; DownloadError offline)

The controls follow Protify and Rives et al. (2021): a probe on language-model
embeddings is only interesting when it beats the same probe on one-hot residues, on the
amino-acid composition, and on a transformer of the same shape whose weights were never
trained (Hewitt & Liang 2019 make the general point about control tasks).

Sequences longer than the model's context (EncoderConfig.max_seq_len, specials included)
are never cut silently. The policy (`long_sequences`) is explicit:

    "window" (default)  overlapping windows of S = max_seq_len - 2 residues, step S - overlap
                        (overlap S // 2 unless given), the last window aligned to the end;
                        every residue takes its vector from the window whose centre is
                        nearest to it (the window that gives it the most context on both
                        sides). A sequence therefore gets exactly one vector per residue,
                        as its per-residue labels need. Pooled vectors are computed from
                        the stitched residues (mean, max); "cls" is the mean of the windows'
                        <cls> vectors.
    "error"             a DataError naming the sequence, its length and the context.

Every embedder's `identity` includes a SHA-256 of the weights (`module_fingerprint`),
the layer and the window settings, so the embedding cache never confuses a trained
model with its random twin, or two checkpoints.

Notation: N sequences, L residues, B batch, T tokens (specials included), C channels.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.bio.cache import Embeddings
from attnlab.bio.controls import CompositionEmbedder, OneHotEmbedder
from attnlab.bio.embedder_base import SequenceEmbedder, module_fingerprint
from attnlab.errors import CheckpointError, ConfigError, DataError

logger = logging.getLogger(__name__)

CONTROL_EMBEDDERS = ("onehot", "composition", "random")
DEFAULT_RANDOM_PRESET = "protein-small"  # the shape of attnlab's own protein language model
LONG_SEQUENCE_POLICIES = ("window", "error")
# The --pool names of the CLI -> the pooling of the cached embeddings. "attn" is learned
# inside the probe, so it reads per-residue vectors ("none").
POOL_TO_EMBEDDING = {"mean": "mean", "max": "max", "cls": "cls", "attn": "none"}

_EMBEDDER_HELP = (
    "choose onehot, composition, random (or random:PRESET / random:CHECKPOINT), an attnlab encoder checkpoint "
    "folder (attnlab train --objective mlm --tokenizer protein), a Hugging Face ESM-2 folder, or a hub name "
    "such as facebook/esm2_t6_8M_UR50D"
)


# ----------------------------------------------------------------------------- the encoder embedder


class EncoderEmbedder(SequenceEmbedder):
    """Embeddings from an attnlab `Encoder` (a protein language model or its random twin).

    Sequences are tokenized `<cls> residues <eos>`, cut into windows when longer than the
    context (see the module docstring), sorted by length into batches, run without
    gradients, stitched back to one vector per residue, pooled and returned in the input
    order. Mean and max pool over residues only (not <cls>/<eos>/padding), "cls" takes
    the <cls> state.

    Args:
        model: an `attnlab.models.encoder.Encoder` (any head; only the hidden states are used).
        tokenizer: its `ProteinTokenizer` (or DNA/RNA tokenizer).
        name: a readable description for logs and results (not part of the cache key).
        layer: which hidden state: None = the last (after the final norm), 0 = the
            embedding layer, i = after block i; negative counts from the end (-1 = last).
        batch_size: windows per forward pass.
        device: where the model runs ("cpu", "cuda", ...).
        long_sequences: "window" or "error" (see the module docstring).
        window_overlap: residues shared by neighbouring windows; None = half a window.
        progress: show a tqdm bar while embedding.
    """

    poolings = ("none", "mean", "max", "cls")

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        name: str = "encoder",
        *,
        layer: int | None = None,
        batch_size: int = 16,
        device: str = "cpu",
        long_sequences: str = "window",
        window_overlap: int | None = None,
        progress: bool = True,
    ):
        from attnlab.bio.tokenizers import SequenceTokenizer
        from attnlab.models.encoder import Encoder

        if not isinstance(model, Encoder):
            raise ConfigError(f"EncoderEmbedder needs an attnlab Encoder, got {type(model).__name__}")
        if not isinstance(tokenizer, SequenceTokenizer):
            raise ConfigError(
                f"EncoderEmbedder needs a protein/DNA/RNA tokenizer (attnlab.bio.tokenizers), got {type(tokenizer).__name__}"
            )
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if long_sequences not in LONG_SEQUENCE_POLICIES:
            raise ConfigError(
                f"long_sequences must be one of {', '.join(LONG_SEQUENCE_POLICIES)}, got {long_sequences!r}"
            )
        num_layers = model.config.num_layers
        if layer is not None:
            if not -(num_layers + 1) <= layer <= num_layers:
                raise ConfigError(
                    f"layer {layer} does not exist: the model has hidden states 0 (embeddings) to {num_layers} "
                    f"(or -1 for the last)"
                )
            layer = layer % (num_layers + 1)
            if layer == num_layers:
                layer = None  # the last hidden state (after the final norm) is what `encode` returns
        self.span = model.config.max_seq_len - 2  # residues per window (the context minus <cls> and <eos>)
        if self.span < 2:
            raise ConfigError(f"the model's context ({model.config.max_seq_len} tokens) leaves no room for residues")
        overlap = self.span // 2 if window_overlap is None else int(window_overlap)
        if not 0 <= overlap < self.span:
            raise ConfigError(f"window_overlap must be in [0, {self.span - 1}] for this model, got {window_overlap}")
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.name = name
        self.layer = layer
        self.batch_size = batch_size
        self.device = device
        self.long_sequences = long_sequences
        self.window_overlap = overlap
        self.progress = progress
        self._fingerprint = module_fingerprint(model)
        config_text = json.dumps(dataclass_dict(model.config), sort_keys=True)
        self._config_hash = hashlib.sha256(config_text.encode()).hexdigest()[:12]

    @property
    def identity(self) -> str:
        tok = json.dumps(self.tokenizer.to_dict(), sort_keys=True)
        layer = "last" if self.layer is None else str(self.layer)
        window = f"window{self.span}/{self.window_overlap}" if self.long_sequences == "window" else "error"
        return f"encoder:config={self._config_hash}:weights={self._fingerprint}:layer={layer}:{window}|{tok}"

    @property
    def embedding_dim(self) -> int:
        return int(self.model.config.embed_dim)

    @property
    def fingerprint(self) -> str:
        """SHA-256 prefix of the weights."""
        return self._fingerprint

    def windows(self, length: int) -> list[tuple[int, int]]:
        """The (start, end) residue windows of a sequence of `length` residues."""
        if length <= self.span:
            return [(0, length)]
        step = self.span - self.window_overlap
        starts = list(range(0, length - self.span, step)) + [length - self.span]
        return [(s, s + self.span) for s in starts]

    def _hidden(self, input_ids: Any, attention_mask: Any) -> Any:
        if self.layer is None:
            return self.model.encode(input_ids, attention_mask)  # (B, T, C)
        return self.model(input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states[self.layer]

    def embed(self, sequences: Sequence[str], pooling: str = "mean") -> Embeddings:
        import torch

        from attnlab.progress import progress_bar as tqdm  # one updating line in a notebook

        self.check_pooling(pooling)
        sequences = [self.tokenizer.normalize(s) for s in sequences]  # raises naming invalid letters
        # Every window of every sequence is one row to embed.
        pieces: list[tuple[int, int, int]] = []  # (sequence index, start, end)
        for i, seq in enumerate(sequences):
            if not seq:
                raise DataError(f"sequence {i + 1} is empty; remove it before embedding")
            if len(seq) > self.span and self.long_sequences == "error":
                raise DataError(
                    f"sequence {i + 1} has {len(seq)} residues but the model's context holds {self.span} "
                    f"(max_seq_len {self.span + 2} with <cls> and <eos>); use long_sequences='window' "
                    "(overlapping windows), or remove long sequences (attnlab.bio.data.filter_length)"
                )
            pieces.extend((i, s, e) for s, e in self.windows(len(seq)))
        n_windowed = sum(1 for s in sequences if len(s) > self.span)
        if n_windowed:
            logger.info(
                "%d of %d sequences are longer than the context of %d residues: embedded in %d-residue "
                "windows overlapping by %d",
                n_windowed,
                len(sequences),
                self.span,
                self.span,
                self.window_overlap,
            )
        order = sorted(range(len(pieces)), key=lambda p: pieces[p][2] - pieces[p][1])
        residue_out: list[Any] = [None] * len(pieces)
        cls_out: list[Any] = [None] * len(pieces)
        starts = range(0, len(order), self.batch_size)
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            for start in tqdm(starts, desc="embedding", unit="batch", disable=not self.progress or len(starts) < 2):
                idx = order[start : start + self.batch_size]
                texts = [sequences[pieces[p][0]][pieces[p][1] : pieces[p][2]] for p in idx]
                batch = self.tokenizer.encode_batch(texts)
                hidden = self._hidden(
                    batch.input_ids.to(self.device), batch.attention_mask.to(self.device)
                )  # (B, T, C)
                hidden = hidden.float().cpu()
                for b, p in enumerate(idx):
                    residue_out[p] = hidden[b][batch.residue_mask[b]].numpy()  # (L_window, C), specials left out
                    cls_out[p] = hidden[b, 0].numpy()  # (C,)
        self.model.train(was_training)
        per_residue, cls_vectors = self._stitch(sequences, pieces, residue_out, cls_out)
        if pooling == "none":
            return per_residue
        if pooling == "cls":
            return (
                np.stack(cls_vectors).astype(np.float32)
                if cls_vectors
                else np.zeros((0, self.embedding_dim), np.float32)
            )
        rows = [r.mean(axis=0) if pooling == "mean" else r.max(axis=0) for r in per_residue]
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, self.embedding_dim), np.float32)

    def _stitch(
        self,
        sequences: Sequence[str],
        pieces: Sequence[tuple[int, int, int]],
        residue_out: Sequence[np.ndarray],
        cls_out: Sequence[np.ndarray],
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """One (L_i, C) array per sequence from its windows (centre rule), and the mean <cls> vector."""
        by_sequence: dict[int, list[int]] = {}
        for p, (i, _, _) in enumerate(pieces):
            by_sequence.setdefault(i, []).append(p)
        per_residue, cls_vectors = [], []
        for i, seq in enumerate(sequences):
            parts = by_sequence[i]
            if len(parts) == 1:
                per_residue.append(np.ascontiguousarray(residue_out[parts[0]], dtype=np.float32))
                cls_vectors.append(cls_out[parts[0]])
                continue
            L = len(seq)
            centres = np.array([(pieces[p][1] + pieces[p][2] - 1) / 2 for p in parts])  # (W,)
            # the window whose centre is nearest each residue (argmin takes the earlier on ties)
            owner = np.abs(np.arange(L)[:, None] - centres[None, :]).argmin(axis=1)  # (L,)
            out = np.empty((L, self.embedding_dim), dtype=np.float32)
            for w, p in enumerate(parts):
                positions = np.flatnonzero(owner == w)
                out[positions] = residue_out[p][positions - pieces[p][1]]
            per_residue.append(out)
            cls_vectors.append(np.mean([cls_out[p] for p in parts], axis=0))
        return per_residue, cls_vectors

    def __repr__(self) -> str:
        return f"EncoderEmbedder({self.name!r}, dim={self.embedding_dim}, weights={self._fingerprint})"


def dataclass_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a plain dict (for hashing)."""
    import dataclasses

    return dataclasses.asdict(config)


# ----------------------------------------------------------------------------- loading models


def _check_sequence_tokenizer(tokenizer: Any, where: str) -> None:
    from attnlab.bio.tokenizers import SequenceTokenizer

    if tokenizer is None:
        raise CheckpointError(f"{where} has no tokenizer; a protein encoder needs its protein tokenizer saved with it")
    if not isinstance(tokenizer, SequenceTokenizer):
        kind = getattr(tokenizer, "kind", type(tokenizer).__name__)
        raise CheckpointError(
            f"{where} is an encoder with a {kind} tokenizer, not a protein language model; train one with "
            "`attnlab train --objective mlm --tokenizer protein --data FILE.fasta --out DIR`"
        )


def load_protein_encoder(source: str | Path) -> tuple[Any, Any, str]:
    """Load a protein encoder from an attnlab checkpoint, a Hugging Face folder or a hub name.

    Args:
        source: an attnlab checkpoint folder (model_type "encoder" with a protein/DNA/RNA
            tokenizer), a Hugging Face ESM folder, or a hub name "org/name".
    Returns:
        (Encoder in eval mode, tokenizer, a description of the source).
    Raises:
        CheckpointError: not a protein encoder (another model type, a text tokenizer, a
            corrupt folder); DownloadError: a hub name while offline.
    """
    from attnlab import checkpoint as ckpt
    from attnlab.interop.hf import is_hf_folder
    from attnlab.models.encoder import Encoder

    path = Path(source).expanduser()
    where = repr(str(source))
    if path.is_dir() and ckpt.is_checkpoint(path):
        meta = ckpt.read_metadata(path)
        if meta["model_type"] != "encoder":
            raise CheckpointError(
                f"{where} holds a {meta['model_type']!r} model, not a protein encoder; pass an encoder checkpoint "
                "trained with `attnlab train --objective mlm --tokenizer protein`"
            )
        from attnlab.models.registry import load_model

        model, tokenizer = load_model(path, expect="encoder")
        _check_sequence_tokenizer(tokenizer, where)
        return model, tokenizer, f"attnlab encoder checkpoint {path.resolve()}"
    if path.is_dir() and not is_hf_folder(path):
        raise CheckpointError(
            f"{where} is neither an attnlab checkpoint nor a Hugging Face model folder (no usable config.json); "
            + _EMBEDDER_HELP
        )
    from attnlab.interop.pretrained import from_pretrained

    model, tokenizer = from_pretrained(source)
    if not isinstance(model, Encoder):
        raise CheckpointError(f"{where} holds a {type(model).__name__}, not a protein encoder; pass an ESM-2 model")
    _check_sequence_tokenizer(tokenizer, where)
    origin = f"Hugging Face folder {path.resolve()}" if path.is_dir() else f"Hugging Face hub model {source}"
    return model, tokenizer, origin


def random_encoder(like: str | Path | None = None, seed: int = 0) -> tuple[Any, Any, str]:
    """The random-weights control: an encoder of a given shape, initialised with a fixed seed.

    Args:
        like: an `EncoderConfig` preset name (None = "protein-small"), or a checkpoint /
            Hugging Face folder whose architecture (config and tokenizer) is copied; its
            weights are replaced by a fresh initialisation (`Encoder.reset_parameters`).
        seed: the initialisation seed (same seed, same weights; the global RNG is left alone).
    Returns:
        (Encoder in eval mode, tokenizer, description).
    """
    import torch

    from attnlab.bio.tokenizers import ProteinTokenizer
    from attnlab.models.encoder import ENCODER_PRESETS, Encoder, EncoderConfig

    like_name = DEFAULT_RANDOM_PRESET if like is None else str(like)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if like_name in ENCODER_PRESETS:
            config = EncoderConfig.from_name(like_name)
            if config.vocab_size != ProteinTokenizer().vocab_size:
                raise ConfigError(
                    f"preset {like_name!r} is not a protein model (vocabulary {config.vocab_size}, the protein "
                    f"tokenizer has {ProteinTokenizer().vocab_size}); use protein-small or esm2-8m"
                )
            model, tokenizer = Encoder(config), ProteinTokenizer()
            shape = f"preset {like_name}"
        elif Path(like_name).expanduser().exists():
            model, tokenizer, origin = load_protein_encoder(like_name)
            shape = f"the architecture of {origin}"
        else:
            raise ConfigError(
                f"random:{like_name}: not an encoder preset ({', '.join(ENCODER_PRESETS)}) nor an existing model folder"
            )
        torch.manual_seed(seed)
        model.reset_parameters()
    return model.eval(), tokenizer, f"random weights (seed {seed}) with {shape}"


# ----------------------------------------------------------------------------- the factory


def embedding_pooling(pool: str, task: str | None = None) -> str:
    """The pooling of the cached embeddings for a --pool choice (and a task).

    Args:
        pool: "mean", "max", "cls", "attn" (learned attention pooling inside the probe) or "none".
        task: with task "residue" the embeddings are always per residue ("none").
    """
    if task == "residue" or pool == "none":
        return "none"
    if pool not in POOL_TO_EMBEDDING:
        raise ConfigError(f"unknown pool {pool!r}; choose one of: {', '.join(POOL_TO_EMBEDDING)}")
    return POOL_TO_EMBEDDING[pool]


def make_embedder(
    spec: str | Path,
    *,
    pool: str | None = None,
    layer: int | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    random_like: str | Path | None = None,
    random_seed: int = 0,
    long_sequences: str = "window",
    window_overlap: int | None = None,
    alphabet: str = "protein",
    progress: bool = True,
) -> SequenceEmbedder:
    """An embedder from its name (see the module docstring for the accepted strings).

    Args:
        spec: "onehot", "composition", "random", "random:PRESET|PATH", an attnlab encoder
            checkpoint folder, a Hugging Face ESM folder, or a hub name "org/name".
        pool: when given, checked against what the embedder supports ("mean", "max",
            "cls", "attn" or "none"; "attn" needs per-residue vectors): a ConfigError names the
            choices instead of failing later.
        layer: hidden state of a model embedder (None = last; see `EncoderEmbedder`).
        batch_size: windows per forward pass (model embedders).
        device: "cpu", "cuda", "mps" or "auto" (model embedders).
        random_like: the shape of the "random" control: a preset name or a model folder
            (overrides the part after "random:"); None = "protein-small".
        random_seed: initialisation seed of the "random" control.
        long_sequences: "window" or "error" for sequences longer than the context.
        window_overlap: residues shared by neighbouring windows (None = half a window).
        alphabet: "protein", "dna" or "rna" (the one-hot / composition controls).
        progress: tqdm bars while embedding.
    Returns:
        A `SequenceEmbedder`. Model embedders are `EncoderEmbedder`s.
    Raises:
        ConfigError: an unknown name, or a pool the embedder does not support;
        CheckpointError: a folder that does not hold a protein encoder.
    """
    from attnlab.interop.hf import looks_like_hub_name
    from attnlab.utils import select_device

    text = str(spec).strip()
    if not text:
        raise ConfigError("the embedder name is empty; " + _EMBEDDER_HELP)
    lowered = text.lower()
    model_options = dict(
        layer=layer,
        batch_size=batch_size,
        long_sequences=long_sequences,
        window_overlap=window_overlap,
        progress=progress,
    )
    embedder: SequenceEmbedder
    if lowered in ("onehot", "one-hot"):
        embedder = OneHotEmbedder(alphabet)
    elif lowered == "composition":
        embedder = CompositionEmbedder(alphabet)
    elif lowered == "random" or lowered.startswith("random:"):
        like = random_like if random_like is not None else (text.split(":", 1)[1] if ":" in text else None)
        model, tokenizer, origin = random_encoder(like, seed=random_seed)
        embedder = EncoderEmbedder(model, tokenizer, origin, device=select_device(device), **model_options)
    elif Path(text).expanduser().exists() or (looks_like_hub_name(text) and "/" in text):
        model, tokenizer, origin = load_protein_encoder(text)
        embedder = EncoderEmbedder(model, tokenizer, origin, device=select_device(device), **model_options)
    else:
        raise ConfigError(f"unknown embedder {text!r} (not a control name, and no such folder); " + _EMBEDDER_HELP)
    if pool is not None:
        check_pool(embedder, pool, text)
    return embedder


def check_pool(embedder: SequenceEmbedder, pool: str, name: str | None = None) -> None:
    """ConfigError unless `embedder` can serve the --pool choice `pool`."""
    needed = embedding_pooling(pool)
    if needed not in embedder.poolings:
        offered = [p for p, e in POOL_TO_EMBEDDING.items() if e in embedder.poolings]
        raise ConfigError(
            f"pool {pool!r} is not supported by the {name or embedder_kind(embedder)} embedder; "
            f"choose one of: {', '.join(offered)}"
        )


def embedder_kind(embedder: SequenceEmbedder) -> str:
    """ "onehot", "composition", "random" or "model" (for results and the app)."""
    if isinstance(embedder, OneHotEmbedder):
        return "onehot"
    if isinstance(embedder, CompositionEmbedder):
        return "composition"
    if isinstance(embedder, EncoderEmbedder) and embedder.name.startswith("random weights"):
        return "random"
    return "model"


__all__ = [
    "CONTROL_EMBEDDERS",
    "EncoderEmbedder",
    "LONG_SEQUENCE_POLICIES",
    "POOL_TO_EMBEDDING",
    "check_pool",
    "embedder_kind",
    "embedding_pooling",
    "load_protein_encoder",
    "make_embedder",
    "random_encoder",
]
