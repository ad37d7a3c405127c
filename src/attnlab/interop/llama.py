"""LLaMA <-> attnlab Llama: import Hugging Face `LlamaForCausalLM` weights, export a Llama as one.

Our `Llama` computes the function of Hugging Face's `LlamaForCausalLM` (RMSNorm, SwiGLU,
rotary "rotate half" positions, grouped-query attention). The differences are of spelling:
  * queries, keys and values are one fused `qkv` layer whose rows are
    [q_proj (H D) | k_proj (G D) | v_proj (G D)]; Hugging Face keeps three layers;
  * names: `model.layers.{i}.input_layernorm` is our `blocks.{i}.norm1`,
    `post_attention_layernorm` our `norm2`, `mlp.gate_proj` / `up_proj` / `down_proj` our
    `ff.w_gate` / `w_up` / `w_down`, `self_attn.o_proj` our `attn.out`.
What our model cannot express is refused with a CheckpointError: rope scaling (Llama 3.1's
"llama3", linear, dynamic ...), a head size other than hidden_size / num_heads, biases in
only one of attention and MLP, `pretraining_tp` > 1 and positional="none" on export.

Notation: C hidden size, H query heads, G key/value heads, D head size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from attnlab.configs.llama import LlamaConfig
from attnlab.errors import CheckpointError
from attnlab.interop.gpt2 import write_hf_folder
from attnlab.interop.hf import HFCheckpoint, load_converted, strip_prefix, take
from attnlab.models.llama import Llama

# Hugging Face activation names -> ours.
HF_TO_ACTIVATION = {
    "silu": "silu",
    "swish": "silu",
    "gelu": "gelu",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_new": "gelu_tanh",
    "relu": "relu",
}
ACTIVATION_TO_HF = {"silu": "silu", "gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "relu": "relu"}


def _rope_theta(config: dict[str, Any], where: Any) -> float:
    """rope_theta from `rope_parameters` (transformers 5) or `rope_theta` / `rope_scaling` (older)."""
    params = config.get("rope_parameters") or {}
    scaling = config.get("rope_scaling") or {}
    rope_type = (
        params.get("rope_type", params.get("type")) or scaling.get("rope_type", scaling.get("type")) or "default"
    )
    if rope_type != "default":
        raise CheckpointError(f"{where}: rope scaling {rope_type!r} is not supported (only plain rotary positions)")
    return float(params.get("rope_theta", config.get("rope_theta", 10000.0)))


def llama_config_to_attnlab(config: dict[str, Any], where: Any = "LLaMA config") -> LlamaConfig:
    """Our `LlamaConfig` for a Hugging Face Llama config dict."""
    C = int(config.get("hidden_size", 4096))
    H = int(config.get("num_attention_heads", 32))
    head_dim = config.get("head_dim")
    if head_dim is not None and int(head_dim) * H != C:
        raise CheckpointError(f"{where}: head_dim {head_dim} x {H} heads differs from hidden_size {C}; not supported")
    attention_bias, mlp_bias = bool(config.get("attention_bias", False)), bool(config.get("mlp_bias", False))
    if attention_bias != mlp_bias:
        raise CheckpointError(f"{where}: attention_bias={attention_bias} with mlp_bias={mlp_bias} is not supported")
    if int(config.get("pretraining_tp", 1) or 1) != 1:
        raise CheckpointError(f"{where}: pretraining_tp > 1 is not supported")
    act = str(config.get("hidden_act", "silu"))
    if act not in HF_TO_ACTIVATION:
        raise CheckpointError(
            f"{where}: activation {act!r} is not supported (supported: {', '.join(HF_TO_ACTIVATION)})"
        )
    kv = config.get("num_key_value_heads")
    return LlamaConfig(
        vocab_size=int(config.get("vocab_size", 32000)),
        max_seq_len=int(config.get("max_position_embeddings", 2048)),
        num_layers=int(config.get("num_hidden_layers", 32)),
        num_heads=H,
        num_kv_heads=int(kv) if kv is not None else None,
        embed_dim=C,
        ff_dim=int(config.get("intermediate_size", 11008)),
        dropout=float(config.get("attention_dropout", 0.0) or 0.0),
        bias=attention_bias,
        tie_weights=bool(config.get("tie_word_embeddings", False)),
        positional="rotary",
        activation=HF_TO_ACTIVATION[act],  # type: ignore[arg-type]
        layer_norm_eps=float(config.get("rms_norm_eps", 1e-6)),
        init_std=float(config.get("initializer_range", 0.02)),
        rope_base=_rope_theta(config, where),
    )


def llama_state_to_attnlab(
    config: dict[str, Any], state: dict[str, Tensor], where: Any = "LLaMA weights"
) -> dict[str, Tensor]:
    """Rename Hugging Face Llama weights into our Llama's state dict (q, k, v fused into qkv)."""
    cfg = llama_config_to_attnlab(config, where)
    s = strip_prefix(state, ("model.",))
    out: dict[str, Tensor] = {
        "tok_emb.weight": take(s, "embed_tokens.weight", where),
        "norm.weight": take(s, "norm.weight", where),
    }
    for i in range(cfg.num_layers):
        h, b = f"layers.{i}.", f"blocks.{i}."
        a = h + "self_attn."
        out.update(
            {
                b + "norm1.weight": take(s, h + "input_layernorm.weight", where),
                b + "attn.qkv.weight": torch.cat([take(s, a + f"{n}_proj.weight", where) for n in "qkv"]),
                b + "attn.out.weight": take(s, a + "o_proj.weight", where),
                b + "norm2.weight": take(s, h + "post_attention_layernorm.weight", where),
                b + "ff.w_gate.weight": take(s, h + "mlp.gate_proj.weight", where),
                b + "ff.w_up.weight": take(s, h + "mlp.up_proj.weight", where),
                b + "ff.w_down.weight": take(s, h + "mlp.down_proj.weight", where),
            }
        )
        if cfg.bias:
            out.update(
                {
                    b + "attn.qkv.bias": torch.cat([take(s, a + f"{n}_proj.bias", where) for n in "qkv"]),
                    b + "attn.out.bias": take(s, a + "o_proj.bias", where),
                    b + "ff.w_gate.bias": take(s, h + "mlp.gate_proj.bias", where),
                    b + "ff.w_up.bias": take(s, h + "mlp.up_proj.bias", where),
                    b + "ff.w_down.bias": take(s, h + "mlp.down_proj.bias", where),
                }
            )
    if not cfg.tie_weights:
        out["lm_head.weight"] = take(state, "lm_head.weight", where)
    return out


def import_llama(checkpoint: HFCheckpoint) -> Llama:
    """Build our Llama from a Hugging Face `LlamaForCausalLM` checkpoint.

    Returns:
        A `Llama` in eval mode whose logits equal LlamaForCausalLM's.
    """
    where = checkpoint.folder
    model = Llama(llama_config_to_attnlab(checkpoint.config, where))
    load_converted(model, llama_state_to_attnlab(checkpoint.config, checkpoint.state, where), where)
    return model.eval()


# ---------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------


def llama_to_hf_config(config: LlamaConfig, tokenizer: Any | None = None) -> dict[str, Any]:
    """The Hugging Face config.json (LlamaForCausalLM) of our Llama config.

    Raises:
        CheckpointError: the Llama uses something LlamaForCausalLM cannot express.
    """
    if not config.norm_first:
        raise CheckpointError("only pre-norm Llamas (model.norm_first=true) can be exported; this one is post-norm")
    if config.positional != "rotary":
        raise CheckpointError(
            "Hugging Face Llama always uses rotary positions; a Llama with positional=none cannot be exported"
        )
    bos = eos = pad = None
    if tokenizer is not None:
        bos, eos, pad = tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": config.vocab_size,
        "max_position_embeddings": config.max_seq_len,
        "hidden_size": config.embed_dim,
        "intermediate_size": config.hidden_dim,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.kv_heads,
        "head_dim": config.head_dim,
        "hidden_act": ACTIVATION_TO_HF[config.activation],
        "rms_norm_eps": config.layer_norm_eps,
        "initializer_range": config.init_std,
        "rope_theta": config.rope_base,  # transformers < 5
        "rope_parameters": {"rope_type": "default", "rope_theta": config.rope_base},  # transformers >= 5
        "attention_bias": config.bias,
        "mlp_bias": config.bias,
        "attention_dropout": config.dropout,
        "pretraining_tp": 1,
        "tie_word_embeddings": config.tie_weights,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "use_cache": True,
        "torch_dtype": "float32",
    }


def llama_state_to_hf(model: Llama) -> dict[str, Tensor]:
    """Our Llama's weights under LlamaForCausalLM's names (qkv split into q_proj, k_proj, v_proj)."""
    cfg = model.config
    sd = {k: v.detach().to("cpu", torch.float32) for k, v in model.state_dict().items()}
    sizes = [cfg.num_heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim]
    out = {"model.embed_tokens.weight": sd["tok_emb.weight"], "model.norm.weight": sd["norm.weight"]}
    for i in range(cfg.num_layers):
        b, h = f"blocks.{i}.", f"model.layers.{i}."
        a = h + "self_attn."
        q, k, v = sd[b + "attn.qkv.weight"].split(sizes)
        out.update(
            {
                h + "input_layernorm.weight": sd[b + "norm1.weight"],
                a + "q_proj.weight": q,
                a + "k_proj.weight": k,
                a + "v_proj.weight": v,
                a + "o_proj.weight": sd[b + "attn.out.weight"],
                h + "post_attention_layernorm.weight": sd[b + "norm2.weight"],
                h + "mlp.gate_proj.weight": sd[b + "ff.w_gate.weight"],
                h + "mlp.up_proj.weight": sd[b + "ff.w_up.weight"],
                h + "mlp.down_proj.weight": sd[b + "ff.w_down.weight"],
            }
        )
        if cfg.bias:
            qb, kb, vb = sd[b + "attn.qkv.bias"].split(sizes)
            out.update(
                {
                    a + "q_proj.bias": qb,
                    a + "k_proj.bias": kb,
                    a + "v_proj.bias": vb,
                    a + "o_proj.bias": sd[b + "attn.out.bias"],
                    h + "mlp.gate_proj.bias": sd[b + "ff.w_gate.bias"],
                    h + "mlp.up_proj.bias": sd[b + "ff.w_up.bias"],
                    h + "mlp.down_proj.bias": sd[b + "ff.w_down.bias"],
                }
            )
    if not cfg.tie_weights:
        out["lm_head.weight"] = sd["lm_head.weight"]
    return {k: v.contiguous() for k, v in out.items()}


def export_llama(model: Llama, out_dir: str | Path, tokenizer: Any | None = None) -> Path:
    """Write our Llama as a Hugging Face folder (loadable by `LlamaForCausalLM.from_pretrained`).

    Args:
        model: the Llama.
        out_dir: folder to write (created; existing files of the same names are replaced).
        tokenizer: the Llama's tokenizer; Hugging Face based ones (bpe) and character
            tokenizers are written as tokenizer.json, others are skipped with a warning.
    Returns:
        The folder.
    """
    config = llama_to_hf_config(model.config, tokenizer)
    return write_hf_folder(out_dir, config, llama_state_to_hf(model), tokenizer, model.config.max_seq_len, "Llama")
