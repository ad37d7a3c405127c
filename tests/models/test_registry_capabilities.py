"""The registry's capability table: which model types are causal LMs, masked LMs, ... without importing them."""

import subprocess
import sys

import pytest

from attnlab.models import registry
from attnlab.models.gpt import GPT, GPTConfig


@pytest.fixture
def scratch_entry():
    """Register test-only model types and remove them afterwards."""
    added: list[str] = []

    def add(name: str, *args, **kwargs) -> None:
        registry.register_model(name, *args, **kwargs)
        added.append(name)

    yield add
    for name in added:
        registry.MODELS.pop(name, None)


def test_every_entry_names_its_class_and_capabilities():
    assert registry.model_types("causal_lm") == ("gpt", "llama")
    assert registry.model_types("masked_lm") == ("encoder",)
    assert registry.model_types("encoder_decoder") == ("seq2seq", "rnn_seq2seq")
    assert set(registry.model_types("image")) == {"vit", "mlp", "convnet"}
    assert set(registry.model_types("classifier")) >= {"encoder", "vit", "mlp", "convnet", "recurrent", "pointnet"}
    assert registry.model_types() == tuple(registry.MODELS)
    for name, entry in registry.MODELS.items():
        assert ":" in entry.target and entry.capabilities <= set(registry.CAPABILITIES), name
    assert registry.MODELS["llama"].target == "attnlab.models.llama:Llama"
    assert registry.capabilities("gpt") == {"causal_lm"} and registry.capabilities("llama") == {"causal_lm"}
    assert registry.capabilities("not-registered") == frozenset()


def test_the_capability_table_never_imports_torch_or_the_models():
    code = (
        "import sys\n"
        "from attnlab.models import registry\n"
        "assert registry.model_types('causal_lm') == ('gpt', 'llama')\n"
        "assert registry.config_class('gpt').__name__ == 'GPTConfig'\n"
        "assert registry.model_type_for_config(registry.config_class('gpt')()) == 'gpt'\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'attnlab.models.llama' not in sys.modules and 'attnlab.models.gpt' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_old_table_is_a_live_view():
    assert registry.MODEL_CLASSES["gpt"] == "attnlab.models.gpt:GPT"
    assert "sequence_transformer" in registry.MODEL_CLASSES and len(registry.MODEL_CLASSES) == len(registry.MODELS)
    assert dict(registry.MODEL_CLASSES) == {k: v.target for k, v in registry.MODELS.items()}


def test_register_model_with_capabilities(scratch_entry):
    scratch_entry("tiny_lm", "attnlab.models.gpt:GPT", {"causal_lm"}, label="tiny LM")
    assert "tiny_lm" in registry.MODEL_CLASSES
    assert registry.model_types("causal_lm")[-1] == "tiny_lm"
    assert registry.has_capability("tiny_lm", "causal_lm") and not registry.has_capability("tiny_lm", "image")
    assert registry.model_class("tiny_lm") is GPT
    assert registry.config_class("tiny_lm") is GPTConfig  # from the class: the entry names no config
    assert registry.model_label("tiny_lm") == "tiny LM"
    scratch_entry("plain", "attnlab.models.gpt:GPT")  # capabilities are optional (older callers)
    assert registry.capabilities("plain") == frozenset() and registry.model_label("plain") == "plain model"
    with pytest.raises(ValueError, match="unknown capabilities causal-lm"):
        registry.register_model("bad", "attnlab.models.gpt:GPT", {"causal-lm"})
    assert "bad" not in registry.MODELS


def test_questions_about_models():
    model = GPT(GPTConfig.from_name("nano"))
    assert registry.has_capability(model, "causal_lm") and not registry.has_capability(model, "masked_lm")
    assert not registry.has_capability(object(), "causal_lm")  # no model_type: no capability
    assert registry.default_model_type("causal_lm") == "gpt"
    assert registry.model_label("gpt") == "GPT" and registry.model_label("llama") == "LLaMA-style model"
    assert registry.model_type_for_config(GPTConfig()) == "gpt"
    assert registry.model_type_for_config(GPTConfig(), "masked_lm") is None
    assert registry.model_type_for_config(object()) is None
    with pytest.raises(ValueError, match="unknown capability 'lm'"):
        registry.model_types("lm")
    with pytest.raises(ValueError, match="no default model type"):
        registry.default_model_type("image")


def test_the_llama_entry_loads_its_class():
    llama = pytest.importorskip("attnlab.models.llama")  # written beside this registry entry
    assert registry.model_class("llama") is llama.Llama
    assert registry.config_class("llama") is llama.Llama.config_class
    assert registry.model_type_for_config(llama.Llama.config_class.from_name("nano"), "causal_lm") == "llama"


@pytest.mark.parametrize("model_type", registry.model_types("causal_lm"))
def test_every_registered_causal_lm_is_what_generation_drives(model_type):
    """Each causal LM of the registry satisfies `attnlab.decoding.protocol.CausalLM` and grows its cache."""
    import torch

    from attnlab.decoding.protocol import CausalLM

    pytest.importorskip(registry.MODELS[model_type].target.partition(":")[0])
    model = registry.model_class(model_type)(registry.config_class(model_type).from_name("nano")).eval()
    assert isinstance(model, CausalLM) and model.model_type == model_type
    cache = model.new_cache()
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        out = model(ids, cache=cache, last_only=True)
        assert out.logits.shape == (1, 1, model.config.vocab_size) and cache.length == 3
        step = model(torch.tensor([[4]]), cache=cache, last_only=True).logits
        full = model(torch.tensor([[1, 2, 3, 4]])).logits[:, -1:]
    torch.testing.assert_close(step, full, rtol=1e-4, atol=1e-5)
