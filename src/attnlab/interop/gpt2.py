"""GPT-2 <-> attnlab GPT: import Hugging Face GPT-2 weights, export a GPT as a GPT-2 folder.

GPT-2 (Radford et al. 2019) is exactly a pre-norm GPT with biases, learned positions,
tied output head and the tanh GELU ("gelu_new", our "gelu_tanh"). Three differences
of spelling, none of substance:
  * Hugging Face stores GPT-2's linear layers as `Conv1D` modules whose weight is
    (in, out), the transpose of `nn.Linear`'s (out, in);
  * queries, keys and values are one `c_attn` layer whose output columns are [q | k | v],
    the same order as our fused `qkv` rows;
  * names: `transformer.h.{i}.ln_1` is our `blocks.{i}.norm1`, `mlp.c_fc` our `ff.fc1` ...
Two rarely used config flags change the attention scores by a constant factor per layer
(`scale_attn_weights=False`, `scale_attn_by_inverse_layer_idx=True`); the importer folds
that factor into the query weights, so such models import exactly too.

Exported folders hold `config.json` (GPT2LMHeadModel), `model.safetensors` and, when the
GPT's tokenizer can be expressed as one, `tokenizer.json` + `tokenizer_config.json`.
Bias-free GPTs export with zero biases and position-free or sinusoidal GPTs with a
zero / fixed position table: the same function either way.

Notation: C channels (n_embd), L layers, V vocabulary.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from attnlab.errors import CheckpointError
from attnlab.interop.hf import HFCheckpoint, load_converted, strip_prefix, take
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.utils import atomic_path, write_json_atomic

logger = logging.getLogger(__name__)

# Hugging Face activation names -> ours.
HF_TO_ACTIVATION = {
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu": "gelu",
    "relu": "relu",
}
ACTIVATION_TO_HF = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}


def _activation(name: str, where: Any) -> str:
    try:
        return HF_TO_ACTIVATION[name]
    except KeyError:
        raise CheckpointError(
            f"{where}: activation {name!r} is not supported (supported: {', '.join(HF_TO_ACTIVATION)})"
        ) from None


def gpt2_config_to_attnlab(config: dict[str, Any], where: Any = "GPT-2 config") -> GPTConfig:
    """Our `GPTConfig` for a Hugging Face GPT-2 config dict."""
    if config.get("add_cross_attention"):
        raise CheckpointError(f"{where}: GPT-2 with cross-attention is not supported")
    n_embd = int(config.get("n_embd", config.get("hidden_size", 768)))
    inner = config.get("n_inner")
    return GPTConfig(
        vocab_size=int(config.get("vocab_size", 50257)),
        max_seq_len=int(config.get("n_positions", config.get("max_position_embeddings", 1024))),
        num_layers=int(config.get("n_layer", config.get("num_hidden_layers", 12))),
        num_heads=int(config.get("n_head", config.get("num_attention_heads", 12))),
        embed_dim=n_embd,
        ff_dim=int(inner) if inner is not None else 4 * n_embd,
        dropout=float(config.get("resid_pdrop", 0.0) or 0.0),
        bias=True,
        tie_weights=bool(config.get("tie_word_embeddings", True)),
        positional="learned",
        activation=_activation(str(config.get("activation_function", "gelu_new")), where),  # type: ignore[arg-type]
        norm_first=True,
        layer_norm_eps=float(config.get("layer_norm_epsilon", 1e-5)),
        init_std=float(config.get("initializer_range", 0.02)),
    )


def _linear(conv1d_weight: Tensor) -> Tensor:
    """Conv1D (in, out) -> nn.Linear (out, in)."""
    return conv1d_weight.t().contiguous()


def gpt2_state_to_attnlab(
    config: dict[str, Any], state: dict[str, Tensor], where: Any = "GPT-2 weights"
) -> dict[str, Tensor]:
    """Rename and transpose Hugging Face GPT-2 weights into our GPT's state dict."""
    cfg = gpt2_config_to_attnlab(config, where)
    s = strip_prefix(state, ("transformer.",))
    C, D = cfg.embed_dim, cfg.head_dim
    out: dict[str, Tensor] = {
        "tok_emb.weight": take(s, "wte.weight", where),
        "pos_emb.weight": take(s, "wpe.weight", where),
        "norm.weight": take(s, "ln_f.weight", where),
        "norm.bias": take(s, "ln_f.bias", where),
    }
    scale_weights = bool(config.get("scale_attn_weights", True))
    by_layer = bool(config.get("scale_attn_by_inverse_layer_idx", False))
    for i in range(cfg.num_layers):
        h, b = f"h.{i}.", f"blocks.{i}."
        qkv_w = _linear(take(s, h + "attn.c_attn.weight", where))  # (3C, C), rows [q | k | v]
        qkv_b = take(s, h + "attn.c_attn.bias", where).clone()  # (3C,)
        # We always divide scores by sqrt(D); fold GPT-2's other choices into the queries.
        factor = (1.0 if scale_weights else math.sqrt(D)) / (float(i + 1) if by_layer else 1.0)
        if factor != 1.0:
            qkv_w = qkv_w.clone()
            qkv_w[:C] *= factor
            qkv_b[:C] *= factor
        out.update(
            {
                b + "norm1.weight": take(s, h + "ln_1.weight", where),
                b + "norm1.bias": take(s, h + "ln_1.bias", where),
                b + "attn.qkv.weight": qkv_w,
                b + "attn.qkv.bias": qkv_b,
                b + "attn.out.weight": _linear(take(s, h + "attn.c_proj.weight", where)),
                b + "attn.out.bias": take(s, h + "attn.c_proj.bias", where),
                b + "norm2.weight": take(s, h + "ln_2.weight", where),
                b + "norm2.bias": take(s, h + "ln_2.bias", where),
                b + "ff.fc1.weight": _linear(take(s, h + "mlp.c_fc.weight", where)),
                b + "ff.fc1.bias": take(s, h + "mlp.c_fc.bias", where),
                b + "ff.fc2.weight": _linear(take(s, h + "mlp.c_proj.weight", where)),
                b + "ff.fc2.bias": take(s, h + "mlp.c_proj.bias", where),
            }
        )
    if not cfg.tie_weights:
        out["lm_head.weight"] = take(state, "lm_head.weight", where)
    return out


def import_gpt2(checkpoint: HFCheckpoint) -> GPT:
    """Build our GPT from a Hugging Face GPT-2 checkpoint (GPT2LMHeadModel or GPT2Model).

    Returns:
        A `GPT` in eval mode whose logits equal GPT2LMHeadModel's.
    """
    where = checkpoint.folder
    cfg = gpt2_config_to_attnlab(checkpoint.config, where)
    model = GPT(cfg)
    state = gpt2_state_to_attnlab(checkpoint.config, checkpoint.state, where)
    load_converted(model, state, where)
    return model.eval()


# ---------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------


def gpt_to_gpt2_config(config: GPTConfig, tokenizer: Any | None = None) -> dict[str, Any]:
    """The Hugging Face GPT-2 config.json (GPT2LMHeadModel) of our GPT config.

    Raises:
        CheckpointError: the GPT uses something GPT-2 cannot express (post-norm, rotary positions).
    """
    if not config.norm_first:
        raise CheckpointError(
            "only pre-norm GPTs (model.norm_first=true) can be exported as GPT-2; this one is post-norm"
        )
    if config.positional == "rotary":
        raise CheckpointError(
            "GPT-2 has learned positions; a GPT with rotary positions (the baby and small presets) cannot be "
            "exported to GPT-2: train one with --model.positional=learned to export it"
        )
    if config.activation not in ACTIVATION_TO_HF:
        raise CheckpointError(f"activation {config.activation!r} has no GPT-2 equivalent")
    bos = eos = None
    if tokenizer is not None:
        bos, eos = tokenizer.bos_id, tokenizer.eos_id
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.max_seq_len,
        "n_embd": config.embed_dim,
        "n_layer": config.num_layers,
        "n_head": config.num_heads,
        "n_inner": config.hidden_dim,
        "activation_function": ACTIVATION_TO_HF[config.activation],
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "layer_norm_epsilon": config.layer_norm_eps,
        "initializer_range": config.init_std,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "tie_word_embeddings": config.tie_weights,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": tokenizer.pad_id if tokenizer is not None else None,
        "use_cache": True,
        "torch_dtype": "float32",
    }


def gpt_state_to_gpt2(model: GPT) -> dict[str, Tensor]:
    """Our GPT's weights under GPT2LMHeadModel's names and layouts (Conv1D transposed).

    Missing biases (bias=False GPTs) become zeros, a fixed sinusoidal table or no
    positions at all become a constant `wpe` table: the computed function is unchanged.
    """
    cfg = model.config
    sd = {k: v.detach().to("cpu", torch.float32) for k, v in model.state_dict().items()}
    C = cfg.embed_dim

    def bias(name: str, size: int) -> Tensor:
        return sd.get(name, torch.zeros(size))

    if cfg.positional == "learned":
        wpe = sd["pos_emb.weight"]
    elif cfg.positional in ("sinusoidal", "fourier"):
        wpe = model.pos_emb.table.detach().to("cpu", torch.float32).clone()
    else:  # no position information
        wpe = torch.zeros(cfg.max_seq_len, C)
    out = {
        "transformer.wte.weight": sd["tok_emb.weight"],
        "transformer.wpe.weight": wpe,
        "transformer.ln_f.weight": sd["norm.weight"],
        "transformer.ln_f.bias": bias("norm.bias", C),
    }
    F = cfg.hidden_dim
    for i in range(cfg.num_layers):
        b, h = f"blocks.{i}.", f"transformer.h.{i}."
        out.update(
            {
                h + "ln_1.weight": sd[b + "norm1.weight"],
                h + "ln_1.bias": bias(b + "norm1.bias", C),
                h + "attn.c_attn.weight": sd[b + "attn.qkv.weight"].t().contiguous(),
                h + "attn.c_attn.bias": bias(b + "attn.qkv.bias", 3 * C),
                h + "attn.c_proj.weight": sd[b + "attn.out.weight"].t().contiguous(),
                h + "attn.c_proj.bias": bias(b + "attn.out.bias", C),
                h + "ln_2.weight": sd[b + "norm2.weight"],
                h + "ln_2.bias": bias(b + "norm2.bias", C),
                h + "mlp.c_fc.weight": sd[b + "ff.fc1.weight"].t().contiguous(),
                h + "mlp.c_fc.bias": bias(b + "ff.fc1.bias", F),
                h + "mlp.c_proj.weight": sd[b + "ff.fc2.weight"].t().contiguous(),
                h + "mlp.c_proj.bias": bias(b + "ff.fc2.bias", C),
            }
        )
    if not cfg.tie_weights:
        out["lm_head.weight"] = sd["lm_head.weight"]
    return {k: v.contiguous() for k, v in out.items()}


def char_tokenizer_to_hf(tokenizer: Any) -> Any:
    """A `tokenizers.Tokenizer` that splits text into characters with the same ids as `tokenizer`.

    Args:
        tokenizer: an attnlab `CharTokenizer`.
    Returns:
        a `tokenizers.Tokenizer` (word-level model over single characters, special tokens added).
    """
    from tokenizers import Regex, decoders, models, pre_tokenizers
    from tokenizers import Tokenizer as RawTokenizer

    vocab = {tok: i for i, tok in enumerate(tokenizer.itos)}
    unk = next((s for s in ("[UNK]", "<unk>") if s in tokenizer.specials), None)
    raw = RawTokenizer(models.WordLevel(vocab, unk_token=unk))
    # every character, newlines included, is its own piece
    raw.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    raw.decoder = decoders.Fuse()
    if tokenizer.specials:
        raw.add_special_tokens(list(tokenizer.specials))
    return raw


def export_gpt2(model: GPT, out_dir: str | Path, tokenizer: Any | None = None) -> Path:
    """Write our GPT as a Hugging Face GPT-2 folder (loadable by `GPT2LMHeadModel.from_pretrained`).

    Args:
        model: the GPT.
        out_dir: folder to write (created; existing files of the same names are replaced).
        tokenizer: the GPT's tokenizer; Hugging Face based ones (bpe) and character
            tokenizers are written as tokenizer.json, others are skipped with a warning.
    Returns:
        The folder.
    """
    config = gpt_to_gpt2_config(model.config, tokenizer)
    return write_hf_folder(out_dir, config, gpt_state_to_gpt2(model), tokenizer, model.config.max_seq_len, "GPT-2")


def write_hf_folder(
    out_dir: str | Path,
    config: dict[str, Any],
    state: dict[str, Tensor],
    tokenizer: Any | None,
    max_seq_len: int,
    what: str,
) -> Path:
    """Write a Hugging Face model folder: weights, tokenizer (when it has an HF form), generation and model config.

    Args:
        out_dir: folder to write (created; a file there is a CheckpointError).
        config: the config.json dict (with bos/eos/pad_token_id).
        state: weights under Hugging Face's names.
        tokenizer: an attnlab tokenizer or None; HFTokenizer and CharTokenizer are written as tokenizer.json.
        max_seq_len: the tokenizer's model_max_length.
        what: the architecture's name for the warning about tokenizers without an HF form.
    """
    from safetensors.torch import save_file

    from attnlab.tokenizers.bpe import HFTokenizer
    from attnlab.tokenizers.char import CharTokenizer

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CheckpointError(f"--out {str(out_dir)!r} is a file; pass a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    raw = None
    if isinstance(tokenizer, HFTokenizer):
        raw = tokenizer.tok
    elif isinstance(tokenizer, CharTokenizer):
        raw = char_tokenizer_to_hf(tokenizer)
    elif tokenizer is not None:
        logger.warning(
            "the %s tokenizer has no Hugging Face form; the %s folder gets no tokenizer", type(tokenizer).__name__, what
        )
    if raw is not None:
        with atomic_path(out_dir / "tokenizer.json") as tmp:
            raw.save(str(tmp))
        specials = {
            "bos_token": tokenizer.bos_id,
            "eos_token": tokenizer.eos_id,
            "pad_token": tokenizer.pad_id,
            "unk_token": tokenizer.unk_id,
        }
        tok_config: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_seq_len}
        for key, token_id in specials.items():
            if token_id is not None:
                tok_config[key] = raw.id_to_token(token_id)
        write_json_atomic(out_dir / "tokenizer_config.json", tok_config)
    write_json_atomic(
        out_dir / "generation_config.json",
        {
            "bos_token_id": config["bos_token_id"],
            "eos_token_id": config["eos_token_id"],
            "pad_token_id": config["pad_token_id"],
        },
    )
    write_json_atomic(out_dir / "config.json", config)  # last: the folder is complete
    return out_dir
