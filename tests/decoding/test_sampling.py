"""One `SamplingConfig` and one set of sampling rules: torch and NumPy filter the same logits alike."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from attnlab.configs.sampling import DEFAULT_MAX_NEW_TOKENS, DEFAULT_TEMPERATURE, SamplingConfig
from attnlab.decoding import causal
from attnlab.scratch import gpt as numpy_gpt


def both_kept(logits: np.ndarray, top_k=None, top_p=None) -> tuple[np.ndarray, np.ndarray]:
    """Which tokens each engine's filter keeps, on the same float64 logits."""
    ours = torch.isfinite(causal.filter_logits(torch.from_numpy(logits), top_k, top_p)).numpy()
    theirs = np.isfinite(numpy_gpt.filter_logits(logits, top_k, top_p))
    return ours, theirs


def test_one_default_everywhere():
    assert DEFAULT_TEMPERATURE == 0.8
    assert SamplingConfig().temperature == DEFAULT_TEMPERATURE
    assert SamplingConfig().max_new_tokens == DEFAULT_MAX_NEW_TOKENS
    # the NumPy engine's keyword defaults are the same numbers
    defaults = numpy_gpt.NumpyGPT.generate.__kwdefaults__
    assert defaults["temperature"] == DEFAULT_TEMPERATURE
    assert numpy_gpt.NumpyGPT.generate.__defaults__ == (DEFAULT_MAX_NEW_TOKENS,)
    # `attnlab.generate` re-exports the same objects
    from attnlab import generate

    assert generate.SamplingConfig is SamplingConfig and generate.generate is causal.generate


def test_the_cli_defaults_are_the_library_defaults():
    from attnlab.cli import build_parser

    args = build_parser().parse_args(["generate", "--checkpoint", "somewhere"])
    assert args.temperature == DEFAULT_TEMPERATURE and args.max_new_tokens == DEFAULT_MAX_NEW_TOKENS


def test_sampling_config_is_torch_free():
    code = "import sys, attnlab.configs.sampling, attnlab.scratch.gpt; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("top_k, top_p", [(None, 0.9), (None, 0.3), (3, None), (5, 0.5), (1, None), (None, 1.0)])
def test_torch_and_numpy_filters_keep_the_same_tokens(seed, top_k, top_p):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(4, 17)) * rng.uniform(0.1, 5.0)
    ours, theirs = both_kept(logits, top_k, top_p)
    np.testing.assert_array_equal(ours, theirs)
    assert ours[np.arange(4), logits.argmax(-1)].all()  # the most likely token always survives


def test_ties():
    logits = np.array([[1.0, 2.0, 2.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    # top-k keeps every token tied with the k-th largest
    ours, theirs = both_kept(logits, top_k=2)
    np.testing.assert_array_equal(ours, theirs)
    assert ours.tolist() == [[False, True, True, False, True], [True] * 5]
    # top-p ranks a tie by id, the lower first: 3 equal tokens of mass ~0.3 each -> p 0.5 keeps two of them
    ours, theirs = both_kept(logits, top_p=0.5)
    np.testing.assert_array_equal(ours, theirs)
    assert ours.tolist() == [[False, True, True, False, False], [True, True, True, False, False]]


@pytest.mark.parametrize("top_p", [5e-324, 1e-300, 1e-12])
def test_tiny_top_p_keeps_only_the_most_likely_token(top_p):
    logits = np.log(np.array([[0.1, 0.6, 0.3], [0.2, 0.2, 0.6]]))
    for dtype in (np.float64, np.float32):
        ours, theirs = both_kept(logits.astype(dtype), top_p=top_p)
        np.testing.assert_array_equal(ours, theirs)
        assert ours.tolist() == [[False, True, False], [False, False, True]]


@pytest.mark.parametrize("top_k", [3, 4, 100])
def test_top_k_at_or_above_the_vocabulary_keeps_everything(top_k):
    logits = np.array([[0.5, -1.0, 2.0]])
    ours, theirs = both_kept(logits, top_k=top_k)
    assert ours.all() and theirs.all()


@pytest.mark.parametrize(
    "sampling",
    [
        SamplingConfig(temperature=0.0),
        SamplingConfig(),
        SamplingConfig(temperature=1.7, top_k=4, top_p=0.8),
        SamplingConfig(temperature=1e-20),
        SamplingConfig(temperature=0.5, top_p=1e-9),
    ],
)
def test_torch_and_numpy_distributions_are_equal(sampling):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 11)) * 4
    logits[0, [2, 5]] = logits[0].max() + 1.0  # a tie for the most likely token: greedy takes the lower id
    ours = causal.next_token_distribution(torch.from_numpy(logits), sampling).numpy()
    theirs = numpy_gpt.next_token_distribution(logits, sampling)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(theirs.sum(-1), 1.0)
    assert np.isfinite(theirs).all()
    if sampling.greedy:
        assert theirs[0].argmax() == 2


def test_numpy_engine_checks_settings_with_sampling_config():
    from attnlab.errors import ConfigError

    model = numpy_gpt.NumpyGPT(numpy_gpt.GPTConfig(vocab_size=7, max_seq_len=8, num_layers=1, num_heads=1, embed_dim=8))
    for bad, field in [
        ({"top_k": 0}, "top_k"),
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": 1e-30}, "temperature"),
    ]:
        with pytest.raises(ConfigError, match=field):
            model.generate([1, 2], 3, **bad)
    with pytest.raises(ConfigError, match="max_new_tokens"):
        model.generate([1, 2], -1)
