"""The NumPy additive attention step: backward against finite differences (float64) and torch
autograd, forward equal to the PyTorch module of the recurrent encoder-decoder."""

import numpy as np
import torch
from torch.testing import assert_close

from attnlab.models.rnn_seq2seq import AdditiveAttention
from attnlab.scratch.additive_attention import additive_attention_backward, additive_attention_forward
from tests.scratch.gradcheck import finite_difference_check

B, S, HD, HE, A = 3, 5, 4, 6, 7


def arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "query": rng.normal(size=(B, HD)),
        "memory": rng.normal(size=(B, S, HE)),
        "W_a": rng.normal(size=(HD, A)) * 0.5,
        "U_a": rng.normal(size=(HE, A)) * 0.5,
        "v_a": rng.normal(size=(A,)),
    }


MASK = np.array([[True] * 5, [True, True, True, False, False], [True, False, False, False, False]])


def test_weights_sum_to_one_over_real_positions_and_are_zero_on_padding():
    p = arrays()
    context, alpha, _ = additive_attention_forward(p["query"], p["memory"], MASK, p["W_a"], p["U_a"], p["v_a"])
    np.testing.assert_allclose(alpha.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    assert (alpha[~MASK] == 0).all() and (alpha[MASK] > 0).all()
    np.testing.assert_allclose(context[2], p["memory"][2, 0], atol=1e-12)  # one real token: its annotation


def test_backward_matches_finite_differences_float64():
    p = arrays(1)
    rng = np.random.default_rng(2)
    g_context, g_alpha = rng.normal(size=(B, HE)), rng.normal(size=(B, S))

    def loss() -> float:
        context, alpha, _ = additive_attention_forward(p["query"], p["memory"], MASK, p["W_a"], p["U_a"], p["v_a"])
        return float((context * g_context).sum() + (alpha * g_alpha).sum())

    _, _, cache = additive_attention_forward(p["query"], p["memory"], MASK, p["W_a"], p["U_a"], p["v_a"])
    grads = additive_attention_backward(g_context, cache, d_alpha=g_alpha)
    checked = finite_difference_check(loss, p, grads, coords=12)
    assert checked == sum(min(12, a.size) for a in p.values())
    # padded annotations get no gradient at all
    assert (grads["memory"][~MASK] == 0).all()


def test_forward_and_backward_equal_the_torch_module():
    torch.manual_seed(0)
    module = AdditiveAttention(HD, HE, A).double()
    p = arrays(3)
    W_a = module.W_a.weight.detach().numpy().T.copy()
    U_a = module.U_a.weight.detach().numpy().T.copy()
    v_a = module.v_a.weight.detach().numpy()[0].copy()
    context, alpha, cache = additive_attention_forward(p["query"], p["memory"], MASK, W_a, U_a, v_a)

    q = torch.tensor(p["query"], requires_grad=True)
    m = torch.tensor(p["memory"], requires_grad=True)
    t_context, t_alpha = module(q, module.keys(m), m, torch.tensor(MASK))
    assert_close(t_context.detach().numpy(), context, rtol=1e-12, atol=1e-12)
    assert_close(t_alpha.detach().numpy(), alpha, rtol=1e-12, atol=1e-12)

    g = np.random.default_rng(4).normal(size=(B, HE))
    (t_context * torch.tensor(g)).sum().backward()
    grads = additive_attention_backward(g, cache)
    assert_close(grads["query"], q.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert_close(grads["memory"], m.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert_close(grads["W_a"], module.W_a.weight.grad.numpy().T, rtol=1e-10, atol=1e-12)
    assert_close(grads["U_a"], module.U_a.weight.grad.numpy().T, rtol=1e-10, atol=1e-12)
    assert_close(grads["v_a"], module.v_a.weight.grad.numpy()[0], rtol=1e-10, atol=1e-12)
