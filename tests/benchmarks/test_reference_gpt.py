"""The benchmark's straightforward GPT computes the same function as attnlab's `baby` GPT,
so the speed comparison in benchmarks/bench_gpt.py compares like with like."""

import sys
from pathlib import Path

import torch

from attnlab.models.gpt import GPT, GPTConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from reference_gpt import ReferenceGPT  # noqa: E402


def test_reference_equals_attnlab_gpt_with_copied_weights():
    torch.manual_seed(0)
    ref = ReferenceGPT(65)
    ours = GPT(GPTConfig.from_name("baby", vocab_size=65))
    assert sum(p.numel() for p in ref.parameters()) == ours.num_parameters()
    with torch.no_grad():
        ours.tok_emb.weight.copy_(ref.tok.weight)
        for mine, theirs in zip(ours.blocks, ref.blocks):
            mine.norm1.weight.copy_(theirs.ln1.weight)
            mine.norm2.weight.copy_(theirs.ln2.weight)
            heads = theirs.sa.heads
            mine.attn.qkv.weight.copy_(
                torch.cat([torch.cat([getattr(h, n).weight for h in heads]) for n in ("query", "key", "value")])
            )
            mine.attn.out.weight.copy_(theirs.sa.proj.weight)
            mine.ff.fc1.weight.copy_(theirs.ff[0].weight)
            mine.ff.fc2.weight.copy_(theirs.ff[2].weight)
        ours.norm.weight.copy_(ref.ln_f.weight)
    x = torch.randint(0, 65, (2, 64))
    y = torch.randint(0, 65, (2, 64))
    logits, loss = ref(x, y)
    out = ours(x, y)
    torch.testing.assert_close(out.logits, logits, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(out.loss, loss, atol=1e-5, rtol=1e-5)
