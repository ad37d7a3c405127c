"""attnlab.exercises.check: the reference solutions pass (and agree with PyTorch/SciPy), NumPy and
PyTorch answers are both accepted, and typical mistakes, written the way a learner
would write them, fail with the hint that names the mistake."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
import torch
import torch.nn.functional as F

from attnlab.exercises import check, solutions
from attnlab.interp.heads import pattern_scores
from attnlab.models.point import farthest_point_sample
from attnlab.nn.positional import sinusoidal_table

# --- the reference solutions ---------------------------------------------------------------


@pytest.mark.parametrize("name", list(check.EXERCISES))
def test_every_solution_passes_its_check(name, capsys):
    result = check.EXERCISES[name](getattr(solutions, name))
    assert result.passed and bool(result) and result.mistake is None and result.framework == "numpy"
    assert capsys.readouterr().out.strip() == result.message and result.message.startswith(f"✅ {name}: correct!")


def test_solutions_agree_with_independent_references():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 5)) * 4
    np.testing.assert_allclose(solutions.softmax(x), scipy.special.softmax(x, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(solutions.softmax(np.array([0.0, math.log(3.0)])), [0.25, 0.75])  # by hand

    q, k, v = (torch.randn(2, 3, 4, 8, dtype=torch.float64) for _ in range(3))
    mask = torch.rand(4, 4) > 0.4
    mask[:, 0] = True  # every query sees at least one key
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    np.testing.assert_allclose(
        solutions.attention(q.numpy(), k.numpy(), v.numpy(), mask.numpy()), expected.numpy(), rtol=1e-10
    )

    gamma, beta = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    xt = torch.tensor(x)
    np.testing.assert_allclose(
        solutions.layer_norm(x, gamma.numpy(), beta.numpy()),
        F.layer_norm(xt, (5,), gamma, beta, eps=1e-5).numpy(),
        rtol=1e-10,
    )

    logits, targets = torch.randn(6, 4, dtype=torch.float64) * 3, torch.tensor([0, 3, 1, 1, 2, 0])
    assert solutions.cross_entropy(logits.numpy(), targets.numpy()) == pytest.approx(
        F.cross_entropy(logits, targets).item(), rel=1e-12
    )
    assert solutions.cross_entropy(np.zeros((1, 4)), np.array([2])) == pytest.approx(math.log(4))  # uniform: log V

    np.testing.assert_allclose(solutions.positional_encoding(20, 8), sinusoidal_table(20, 8).numpy(), atol=1e-6)
    np.testing.assert_array_equal(solutions.causal_mask(4), torch.ones(4, 4).tril().bool().numpy())
    a, b = rng.normal(size=7), rng.normal(size=7)
    assert solutions.cosine_similarity(a, b) == pytest.approx(
        F.cosine_similarity(torch.tensor(a), torch.tensor(b), dim=0).item()
    )

    heads = solutions.multi_head_split(np.arange(2 * 3 * 6).reshape(2, 3, 6), 2)  # (B, H, T, D) = (2, 2, 3, 3)
    np.testing.assert_array_equal(heads[0, 1, 2], [15, 16, 17])  # batch 0, head 1 = channels 3..5, token 2
    np.testing.assert_array_equal(solutions.multi_head_merge(heads), np.arange(36).reshape(2, 3, 6))

    hidden = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    np.testing.assert_allclose(solutions.mean_pooling(hidden, np.array([[1, 1, 0]])), [[2.0, 3.0]])  # padding ignored
    cloud = rng.normal(size=(64, 3))
    np.testing.assert_array_equal(  # the library's PyTorch farthest-point sampling
        solutions.farthest_point_sample(cloud, 16), farthest_point_sample(torch.from_numpy(cloud)[None], 16)[0].numpy()
    )
    line = np.zeros((5, 3))
    line[:, 0] = [0, 1, 2, 3, 10]  # centroid x = 3.2: farthest 10, then 0, then 3 (3 from 0, 7 from 10)
    np.testing.assert_array_equal(solutions.farthest_point_sample(line, 3), [4, 0, 3])  # by hand

    from attnlab.interp import run_with_cache
    from attnlab.models.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=11, max_seq_len=9, num_layers=3, num_heads=2, embed_dim=16)).eval()
    ids = torch.randint(0, 11, (4, 9))
    with torch.no_grad():
        _, cache = run_with_cache(gpt, ids, names="blocks.*.attn.hook_pattern")
    patterns = cache.stack("attn.hook_pattern")  # (L, B, H, T, T) from a real model
    np.testing.assert_allclose(  # the library's previous-token score
        solutions.previous_token_scores(patterns.numpy()), pattern_scores(patterns, ids).previous_token, rtol=1e-6
    )
    shifted = np.eye(4, k=-1)[None, None, None]  # (1, 1, 1, 4, 4): queries 1..3 all on their previous token
    np.testing.assert_allclose(solutions.previous_token_scores(shifted), [[1.0]])  # query 0's row does not count
    assert solutions.ablation_prediction() == {"previous_token_head", "induction_heads"}


# --- the package's layout ------------------------------------------------------------------


def test_every_exercise_has_one_group_module_and_one_solution():
    from attnlab.exercises import basics, encoder_block, interp, losses, points, pooling, scaling, self_attention

    groups = [basics, self_attention, encoder_block, losses, pooling, points, interp, scaling]
    every = {**check.EXERCISES, **check.PREDICTIONS}
    assert not set(check.EXERCISES) & set(check.PREDICTIONS)
    names = [name for module in groups for name in module.__all__]
    assert sorted(names) == sorted(every)  # each check lives in exactly one group
    for module in groups:
        for name in module.__all__:
            assert getattr(module, name) is every[name]
    assert sorted(solutions.__all__) == sorted(every)


def test_the_package_and_the_names_before_the_move_give_the_same_objects():
    import attnlab.exercises as exercises
    from attnlab import check as old_check
    from attnlab import labs as old_labs
    from attnlab import solutions as old_solutions

    assert old_check is check and old_solutions is solutions and old_labs is exercises.labs
    for name, function in {**check.EXERCISES, **check.PREDICTIONS}.items():
        assert getattr(exercises, name) is function
    assert exercises.CheckResult is check.CheckResult and exercises.mistakes is check.mistakes


def test_importing_the_exercises_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, attnlab.exercises\nassert 'torch' not in sys.modules, 'torch was imported'\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# --- PyTorch answers ------------------------------------------------------------------------


def torch_attention(q, k, v, mask=None):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def torch_layer_norm(x, gamma, beta, eps=1e-5):
    return F.layer_norm(x, gamma.shape, gamma, beta, eps)


def torch_split(x, num_heads):
    B, T, C = x.shape
    return x.view(B, T, num_heads, C // num_heads).transpose(1, 2)


def torch_merge(x):
    B, H, T, D = x.shape
    return x.transpose(1, 2).reshape(B, T, H * D)


def torch_positional_encoding(num_positions, dim):
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]
    angle = position / 10000 ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    return torch.stack([angle.sin(), angle.cos()], dim=-1).reshape(num_positions, dim)


def torch_mean_pooling(hidden, attention_mask):
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1)


TORCH_ANSWERS = {
    "softmax": lambda x: torch.softmax(x, dim=-1),
    "cosine_similarity": lambda a, b: F.cosine_similarity(a, b, dim=0),
    "causal_mask": lambda n: torch.tril(torch.ones(n, n)).bool(),
    "attention": torch_attention,
    "layer_norm": torch_layer_norm,
    "multi_head_split": torch_split,
    "multi_head_merge": torch_merge,
    "positional_encoding": torch_positional_encoding,
    "cross_entropy": lambda logits, targets: F.cross_entropy(logits, targets),
    "mean_pooling": torch_mean_pooling,
    "farthest_point_sample": lambda points, g: farthest_point_sample(points[None], g)[0],  # the library's
    "previous_token_scores": lambda p: (
        pattern_scores(p, torch.zeros(p.shape[1], p.shape[3], dtype=torch.long)).previous_token
    ),  # the library's
}


@pytest.mark.parametrize("name", list(check.EXERCISES))
def test_pytorch_answers_pass(name):
    result = check.EXERCISES[name](TORCH_ANSWERS[name], verbose=False, strict=True)
    assert result.passed
    if name not in ("causal_mask", "positional_encoding"):  # these take ints: any framework runs them
        assert result.framework == "torch"


def test_method_style_pytorch_code_is_detected_without_naming_torch():
    def softmax(x):  # no `torch.` anywhere: NumPy arrays fail, tensors work
        return x.softmax(dim=-1)

    assert check.softmax(softmax, verbose=False).framework == "torch"
    assert check.softmax(softmax, verbose=False, framework="numpy").mistake == "error"


# --- typical mistakes, written the way learners write them -------------------------------------


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def att_no_scale(q, k, v, mask=None):
    s = q @ k.transpose(-2, -1)
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def att_scale_by_d(q, k, v, mask=None):
    s = q @ np.swapaxes(k, -1, -2) / q.shape[-1]
    if mask is not None:
        s = np.where(mask, s, -1e9)  # -1e9 instead of -inf: the same weights
    return np_softmax(s) @ v


def att_wrong_axis(q, k, v, mask=None):
    s = q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))
    if mask is not None:
        s = s.masked_fill(mask == 0, float("-inf"))
    return torch.softmax(s, dim=-2) @ v


def att_mask_after_softmax(q, k, v, mask=None):
    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), dim=-1)
    if mask is not None:
        w = w.masked_fill(~mask, 0.0)
    return w @ v


def att_mask_polarity(q, k, v, mask=None):
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        s[np.broadcast_to(mask, s.shape)] = -np.inf  # blocks the keys that MAY be attended
    return np_softmax(s) @ v


def att_mask_times(q, k, v, mask=None):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        s = s * mask
    return torch.softmax(s, dim=-1) @ v


def att_k_dot_T(q, k, v, mask=None):
    s = q @ k.T / np.sqrt(q.shape[-1])  # fine on 2-D, wrong on a batch
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    return np_softmax(s) @ v


def att_no_transpose(q, k, v, mask=None):
    return np_softmax(q @ k / np.sqrt(q.shape[-1])) @ v


def att_returns_weights(q, k, v, mask=None):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, dim=-1)


def ln_torch_var(x, gamma, beta, eps=1e-5):
    return (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + eps) * gamma + beta  # unbiased!


def ln_eps_outside(x, gamma, beta, eps=1e-5):
    return (x - x.mean(-1, keepdims=True)) / (x.std(-1, keepdims=True) + eps) * gamma + beta


def ln_batch_axis(x, gamma, beta, eps=1e-5):
    return (x - x.mean(0, keepdims=True)) / np.sqrt(x.var(0, keepdims=True) + eps) * gamma + beta


def ln_no_eps(x, gamma, beta, eps=1e-5):
    return (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True) * gamma + beta


def pe_halves(num_positions, dim):
    p = np.arange(num_positions)[:, None]
    angle = p / 10000 ** (np.arange(0, dim, 2) / dim)
    return np.concatenate([np.sin(angle), np.cos(angle)], axis=1)


def pe_loop_doubled(num_positions, dim):
    pe = np.zeros((num_positions, dim))
    for p in range(num_positions):
        for j in range(0, dim, 2):
            pe[p, j] = math.sin(p / 10000 ** (2 * j / dim))
            pe[p, j + 1] = math.cos(p / 10000 ** (2 * j / dim))
    return pe


def ce_naive(logits, targets):
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return -np.log(probs[np.arange(len(targets)), targets]).mean()


def prev_with_eye(p):
    T = p.shape[-1]
    return (p * np.eye(T, k=-1)).sum(-1).mean(axis=(1, 3))  # averages over all T queries, query 0 included


def prev_argmax(p):
    scores = torch.diagonal(p, -1, -2, -1).mean((1, 3))
    return torch.tensor(divmod(int(scores.argmax()), scores.shape[1]))  # (layer, head), not the scores


MISTAKES = [
    ("softmax", lambda x: np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True), "no_max_subtraction", "maximum"),
    ("softmax", lambda x: torch.softmax(x, dim=0), "wrong_axis", "last axis"),
    ("softmax", lambda x: np.exp(x - x.max()) / np.exp(x - x.max()).sum(), "whole_array", "whole array"),
    ("softmax", lambda x: x / x.sum(-1, keepdims=True), "no_exp", "exponentiates"),
    ("softmax", lambda x: torch.log_softmax(x, -1), "log_softmax", "log-probabilities"),
    ("softmax", lambda x: np.exp(x - x.max(-1)) / np.exp(x - x.max(-1)).sum(-1), "no_keepdims", "keepdims"),
    ("cosine_similarity", lambda a, b: a @ b, "dot_only", "|a| |b|"),
    ("cosine_similarity", lambda a, b: 1 - F.cosine_similarity(a, b, dim=0), "cosine_distance", "distance"),
    ("cosine_similarity", lambda a, b: np.linalg.norm(a - b), "euclidean_distance", "Euclidean"),
    ("causal_mask", lambda n: torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1), "inverted", "polarity"),
    ("causal_mask", lambda n: np.tril(np.ones((n, n)), -1).astype(bool), "excludes_diagonal", "itself"),
    ("causal_mask", lambda n: np.triu(np.ones((n, n), dtype=bool)), "upper_triangle", "LOWER"),
    ("causal_mask", lambda n: np.triu(np.full((n, n), -np.inf), 1), "additive_mask", "boolean"),
    ("attention", att_no_scale, "no_scale", "sqrt(d)"),
    ("attention", att_scale_by_d, "scale_by_d", "SQUARE ROOT"),
    ("attention", att_wrong_axis, "softmax_wrong_axis", "LAST axis"),
    ("attention", att_mask_after_softmax, "mask_after_softmax", "BEFORE the softmax"),
    ("attention", att_mask_polarity, "mask_inverted", "polarity"),
    ("attention", att_mask_times, "mask_multiplied", "exp(0) = 1"),
    ("attention", att_k_dot_T, "batch_transpose", "k.T reverses"),
    ("attention", att_no_transpose, "missing_transpose", "Transpose"),
    ("attention", att_returns_weights, "returns_weights", "weights @ v"),
    ("layer_norm", ln_torch_var, "unbiased_variance", "biased variance"),
    ("layer_norm", ln_eps_outside, "eps_outside_sqrt", "inside the square root"),
    ("layer_norm", ln_batch_axis, "wrong_axis", "batch norm"),
    ("layer_norm", ln_no_eps, "no_eps", "divides by zero"),
    (
        "layer_norm",
        lambda x, g, b, eps=1e-5: (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps),
        "no_affine",
        "gamma + beta",
    ),
    ("multi_head_split", lambda x, h: x.reshape(x.shape[0], h, x.shape[1], -1), "reshape_without_transpose", "mixes"),
    ("multi_head_split", lambda x, h: x.view(x.shape[0], x.shape[1], h, -1), "no_transpose", "swap the T and H"),
    (
        "multi_head_split",
        lambda x, h: x.reshape(*x.shape[:2], -1, h).permute(0, 3, 1, 2),
        "interleaved_channels",
        "contiguous",
    ),
    ("multi_head_merge", lambda x: x.reshape(x.shape[0], x.shape[2], -1), "reshape_without_transpose", "swap H and T"),
    ("positional_encoding", pe_halves, "halves_not_interleaved", "interleave"),
    ("positional_encoding", pe_loop_doubled, "exponent_doubled", "already is 2i"),
    ("positional_encoding", lambda T, d: torch_positional_encoding(T, d).T, "transposed", "one row per position"),
    ("cross_entropy", ce_naive, "unstable_logsumexp", "log-sum-exp"),
    ("cross_entropy", lambda logits, t: F.cross_entropy(logits, t, reduction="sum"), "sum_not_mean", "mean"),
    ("cross_entropy", lambda logits, t: F.cross_entropy(logits, t, reduction="none"), "no_mean", "MEAN"),
    ("cross_entropy", lambda logits, t: -logits[torch.arange(len(t)), t].mean(), "raw_logits", "log-probabilities"),
    (
        "cross_entropy",
        lambda logits, t: torch.log_softmax(logits, -1)[torch.arange(len(t)), t].mean(),
        "missing_minus",
        "MINUS",
    ),
    ("mean_pooling", lambda h, m: h.mean(axis=1), "includes_padding", "real tokens"),
    ("mean_pooling", lambda h, m: (h * m[..., None]).sum(1) / h.shape[1], "divides_by_length", "REAL tokens"),
    ("mean_pooling", lambda h, m: h[:, 0], "cls_token", "CLS"),
    ("previous_token_scores", lambda p: torch.diagonal(p, 0, -2, -1).mean((1, 3)), "diagonal", "ITSELF"),
    ("previous_token_scores", lambda p: np.diagonal(p, 1, -2, -1).mean(axis=(1, 3)), "above_diagonal", "FUTURE"),
    ("previous_token_scores", lambda p: p[..., 1:, 0].mean((1, 3)), "first_token", "sink"),
    ("previous_token_scores", prev_with_eye, "counts_query_zero", "query 0 has no previous token"),
    ("previous_token_scores", lambda p: torch.diagonal(p, -1, -2, -1).sum(-1).mean(1), "sum_over_queries", "AVERAGE"),
    ("previous_token_scores", lambda p: np.diagonal(p, -1, -2, -1).mean(-1).sum(1), "sum_over_batch", "do not add"),
    ("previous_token_scores", lambda p: torch.diagonal(p[:, 0], -1, -2, -1).mean(-1), "first_sequence_only", "EVERY"),
    ("previous_token_scores", lambda p: np.diagonal(p, -1, -2, -1).mean(-1), "no_batch_mean", "batch too"),
    ("previous_token_scores", lambda p: np.diagonal(p, -1, -2, -1).mean(1), "no_query_mean", "queries as well"),
    ("previous_token_scores", prev_argmax, "returns_argmax", "argmax comes next"),
]


@pytest.mark.parametrize("exercise, answer, mistake, hint", MISTAKES, ids=[f"{e}-{m}" for e, _, m, _ in MISTAKES])
def test_typical_mistakes_get_the_right_hint(exercise, answer, mistake, hint, capsys):
    result = check.EXERCISES[exercise](answer)  # never raises on a wrong answer
    assert not result.passed and not bool(result)
    assert result.mistake == mistake, result.message
    assert hint in result.hint
    printed = capsys.readouterr().out.strip()
    assert (
        printed == result.message
        and printed.startswith(f"❌ {exercise}: not yet.")
        and f"Hint: {result.hint}" in printed
    )


def test_every_recognised_mistake_is_distinguishable():
    # each deliberately wrong variant differs from the reference and is recognised as itself
    for exercise, run in check.EXERCISES.items():
        for name in check.mistakes(exercise):
            assert run(check.mistake_function(exercise, name), verbose=False).mistake == name, (exercise, name)


# --- the rest of the behaviour ----------------------------------------------------------------


def test_strict_raises_with_the_message_and_quiet_prints_nothing(capsys):
    with pytest.raises(AssertionError, match="(?s)not yet.*Hint: .*maximum"):
        check.softmax(lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True), strict=True, verbose=False)
    assert capsys.readouterr().out == ""
    assert check.softmax(solutions.softmax, strict=True, verbose=False).passed


def test_broken_answers_are_reported_not_raised():
    def placeholder(x):
        raise NotImplementedError

    def forgot_return(x):
        np.exp(x)

    def crashes(x):
        return undefined_name  # noqa: F821

    assert check.softmax(placeholder, verbose=False).mistake == "not_implemented"
    assert check.softmax(forgot_return, verbose=False).mistake == "returns_none"
    result = check.softmax(crashes, verbose=False)
    assert result.mistake == "error" and "NameError" in result.message and "undefined_name" in result.message
    assert check.softmax(solutions.softmax(np.ones(3)), verbose=False).mistake == "not_callable"
    assert check.layer_norm(lambda x, g, b: "text", verbose=False).mistake == "not_array"


def test_an_unrecognised_mistake_says_where_it_is_wrong():
    def off_by_a_little(q, k, v, mask=None):
        return solutions.attention(q, k, v, mask) + (0.1 if mask is not None else 0.0)

    result = check.attention(off_by_a_little, verbose=False)
    assert result.mistake is None and result.hint == check._DEFINITIONS["attention"].general_hint
    assert "Right on 2-D inputs without a mask" in result.message and "largest difference 0.1" in result.message


def test_answers_that_change_their_input_in_place_are_judged_fairly():
    def softmax(x):
        x -= x.max(axis=-1, keepdims=True)  # in place: the check must hand out copies
        np.exp(x, out=x)
        x /= x.sum(axis=-1, keepdims=True)
        return x

    assert check.softmax(softmax, verbose=False).passed


def test_a_layer_norm_without_an_eps_parameter_is_still_called():
    def layer_norm(x, gamma, beta):  # uses its own eps
        return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * gamma + beta

    assert check.layer_norm(layer_norm, verbose=False).passed


def test_notebook_display_shows_the_message_once(capsys):
    result = check.softmax(solutions.softmax)
    result._ipython_display_()  # what Jupyter calls for the cell's value
    assert capsys.readouterr().out.count("correct!") == 1
    quiet = check.softmax(solutions.softmax, verbose=False)
    quiet._ipython_display_()
    assert capsys.readouterr().out.count("correct!") == 1
    assert repr(quiet) == "CheckResult(exercise='softmax', passed=True, mistake=None)"


def test_framework_argument_and_unknown_names():
    with pytest.raises(ValueError, match="framework"):
        check.softmax(solutions.softmax, framework="jax")
    with pytest.raises(KeyError, match="unknown exercise"):
        check.mistakes("backprop")
    assert len(check.EXERCISES) >= 6


# --- the prediction check (lab 8): a statement compared with an experiment's measurements ------------

# an experiment like lab 8's: clean repeated half 0.4, first half 4.4 (gap 4.0); 0.25 of the gap = 1.0
CIRCUIT = {"previous_token_head": 3.4, "other_layer0_heads": 0.8, "induction_heads": 4.1}
LOSSES = dict(clean=0.4, first_half=4.4)


def test_the_reference_prediction_matches_the_circuit_and_is_printed_with_the_table(capsys):
    result = check.ablation_prediction(solutions.ablation_prediction, CIRCUIT, **LOSSES)
    assert result.passed and result.mistake is None and result.hint is None
    printed = capsys.readouterr().out.strip()
    assert printed == result.message and printed.startswith("✅ ablation_prediction: correct!")
    assert "removing previous_token_head and induction_heads breaks copying, and it does." in printed
    assert "  other_layer0_heads   0.80             10%  harmless  harmless" in printed
    assert "  induction_heads      4.10             92%  breaks    breaks" in printed
    assert check.PREDICTIONS["ablation_prediction"] is check.ablation_prediction


def test_the_truth_is_the_measurement_not_the_reference():
    variant = {**CIRCUIT, "other_layer0_heads": 2.0}  # a model whose other layer-0 head matters too (40% of the gap)
    assert not check.ablation_prediction(solutions.ablation_prediction, variant, verbose=False, **LOSSES)
    everything = {"previous_token_head", "other_layer0_heads", "induction_heads"}
    assert check.ablation_prediction(lambda: everything, variant, verbose=False, **LOSSES).passed
    above = {**CIRCUIT, "other_layer0_heads": 1.45}  # a quarter of the gap is 1.0 above the clean 0.4
    assert check.ablation_prediction(lambda: everything, above, verbose=False, **LOSSES).passed
    below = {**CIRCUIT, "other_layer0_heads": 1.35}
    assert check.ablation_prediction(solutions.ablation_prediction, below, verbose=False, **LOSSES).passed


PREDICTION_MISTAKES = [
    ({"induction_heads"}, "missed_previous_token_head", "K-composition"),
    (["previous_token_head"], "missed_induction_heads", "copy it"),
    ({"previous_token_head", "induction_heads", "other_layer0_heads"}, "bystander", "not every head"),
    (set(), "missed_previous_token_head", "K-composition"),
    ({"induction_head", "previous_token_head"}, "unknown_name", "did you mean 'induction_heads'?"),
    ({"L0H1"}, "unknown_name", "the names are: previous_token_head, other_layer0_heads, induction_heads"),
    (3, "not_names", "set of names"),
    ({"induction_heads": True}, "not_names", "set of names"),
]


@pytest.mark.parametrize("value, mistake, hint", PREDICTION_MISTAKES, ids=[m for _, m, _ in PREDICTION_MISTAKES])
def test_wrong_predictions_get_the_right_hint(value, mistake, hint, capsys):
    result = check.ablation_prediction(lambda: value, CIRCUIT, **LOSSES)
    assert not result.passed and result.mistake == mistake, result.message
    assert hint in result.hint
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("❌ ablation_prediction: not yet.") and f"Hint: {result.hint}" in printed


def test_prediction_values_stubs_and_broken_functions():
    assert check.ablation_prediction({"previous_token_head", "induction_heads"}, CIRCUIT, verbose=False, **LOSSES)
    one = {"previous_token_head": 3.4, "other_layer0_heads": 0.5}
    assert check.ablation_prediction("previous_token_head", one, verbose=False, **LOSSES).passed  # one name
    assert check.ablation_prediction(("previous_token_head",), one, verbose=False, **LOSSES).passed

    def stub():
        raise NotImplementedError

    result = check.ablation_prediction(stub, CIRCUIT, verbose=False, **LOSSES)
    assert result.mistake == "not_implemented" and "NotImplementedError" in result.message
    assert check.ablation_prediction(lambda: None, CIRCUIT, verbose=False, **LOSSES).mistake == "returns_none"
    broken = check.ablation_prediction(lambda: 1 / 0, CIRCUIT, verbose=False, **LOSSES)
    assert broken.mistake == "error" and "ZeroDivisionError" in broken.message
    no_copying = check.ablation_prediction(
        solutions.ablation_prediction, CIRCUIT, verbose=False, clean=4.4, first_half=4.4
    )
    assert no_copying.mistake == "no_copying" and "phase change" in no_copying.hint


def test_prediction_strict_and_quiet(capsys):
    with pytest.raises(AssertionError, match="(?s)not yet.*K-composition"):
        check.ablation_prediction(lambda: {"induction_heads"}, CIRCUIT, strict=True, verbose=False, **LOSSES)
    assert capsys.readouterr().out == ""
    quiet = check.ablation_prediction(solutions.ablation_prediction, CIRCUIT, verbose=False, **LOSSES)
    quiet._ipython_display_()
    assert capsys.readouterr().out.count("correct!") == 1
