"""Generation drives any model that meets the protocols: GPT, Llama, Seq2Seq, and small stand-ins."""

from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from attnlab.decoding import CausalLM, DecodingCache, Seq2SeqLM, generate, greedy_decode
from attnlab.decoding.seq2seq import beam_search
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.models.outputs import ModelOutput
from attnlab.nn.attention import KVCache


@dataclass(frozen=True)
class CountingConfig:
    vocab_size: int = 11
    max_seq_len: int = 6
    num_layers: int = 0
    positional: str = "learned"


class CountingCache:
    """A cache that only counts positions (the stand-in model needs nothing else)."""

    def __init__(self) -> None:
        self.count = 0

    @property
    def length(self) -> int:
        return self.count

    def reorder(self, index: Tensor) -> None:
        pass

    def crop(self, length: int) -> None:
        self.count = length


class PositionalBigram(nn.Module):
    """Not a transformer: next-token logits from the current token and its position.

    Its logits depend on absolute positions, so a cache that is filled or slid wrongly
    changes the generated tokens.
    """

    model_type = "positional-bigram"
    config_class = CountingConfig

    def __init__(self, config: CountingConfig = CountingConfig()):
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, 8)
        self.pos_emb = nn.Embedding(config.max_seq_len, 8)
        self.blocks = nn.ModuleList()
        self.norm = nn.Identity()
        self.lm_head = nn.Linear(8, config.vocab_size)

    def new_cache(self) -> CountingCache:
        return CountingCache()

    def forward(
        self,
        input_ids,
        targets=None,
        *,
        attention_mask=None,
        cache=None,
        output_attentions=False,
        output_hidden_states=False,
        last_only=False,
        trace=None,
    ) -> ModelOutput:
        start = 0 if cache is None else cache.length
        positions = torch.arange(start, start + input_ids.size(1))
        assert int(positions[-1]) < self.config.max_seq_len, "fed past the window"
        if cache is not None:
            cache.count += input_ids.size(1)
        x = self.tok_emb(input_ids) + self.pos_emb(positions)
        if last_only:
            x = x[:, -1:]
        return ModelOutput(logits=self.lm_head(self.norm(x)))


def test_gpt_and_the_stand_in_meet_the_protocol():
    gpt = GPT(GPTConfig.from_name("nano", vocab_size=11, max_seq_len=8))
    assert isinstance(gpt, CausalLM) and isinstance(gpt.new_cache(), DecodingCache)
    assert isinstance(PositionalBigram(), CausalLM) and isinstance(CountingCache(), DecodingCache)
    assert isinstance(KVCache(2), DecodingCache)
    assert not isinstance(nn.Linear(2, 2), CausalLM)


def test_llama_meets_the_protocol_and_generates():
    from attnlab.models.llama import Llama, LlamaConfig

    torch.manual_seed(0)
    model = Llama(LlamaConfig.from_name("nano", vocab_size=11, max_seq_len=8)).eval()
    assert isinstance(model, CausalLM)
    prompt = torch.randint(0, 11, (2, 3))
    a = generate(model, prompt, max_new_tokens=12, temperature=0.0, use_cache=True)
    assert torch.equal(a, generate(model, prompt, max_new_tokens=12, temperature=0.0, use_cache=False))


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_a_model_that_is_not_a_gpt_generates_the_same_with_and_without_cache(temperature):
    torch.manual_seed(0)
    model = PositionalBigram().eval()
    prompt = torch.randint(0, 11, (3, 2))
    a = generate(model, prompt, max_new_tokens=15, temperature=temperature, seed=1, use_cache=True)  # slides the window
    b = generate(model, prompt, max_new_tokens=15, temperature=temperature, seed=1, use_cache=False)
    assert a.shape == (3, 17) and torch.equal(a, b)
    # the same tokens by hand: every step recomputes the last max_seq_len tokens
    if temperature == 0.0:
        ids = prompt
        for _ in range(15):
            nxt = model(ids[:, -6:]).logits[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, nxt], 1)
        assert torch.equal(a, ids)


@dataclass
class StandInEncoding:
    last_hidden_state: Tensor  # (B, S, C)
    attention_mask: Tensor  # (B, S)


@dataclass(frozen=True)
class StandInSeq2SeqConfig:
    vocab_size: int = 7
    max_target_len: int = 9
    positional: str = "learned"
    bos_id: int = 1
    eos_id: int = 2
    pad_id: int = 0


class MeanPoolSeq2Seq(nn.Module):
    """Not a transformer: the decoder sees the mean of the source embeddings and the last token."""

    def __init__(self):
        super().__init__()
        self.config = StandInSeq2SeqConfig()
        self.emb = nn.Embedding(7, 4)
        self.head = nn.Linear(8, 7)

    def encode(self, input_ids, attention_mask=None):
        mask = input_ids != self.config.pad_id if attention_mask is None else attention_mask.bool()
        return StandInEncoding(self.emb(input_ids), mask)

    def decode(self, decoder_input_ids, encoder_output, *, cache=None, last_only=False):
        m = encoder_output.attention_mask[..., None].float()
        pooled = (encoder_output.last_hidden_state * m).sum(1) / m.sum(1)  # (N, C)
        if cache is not None:
            cache.count += decoder_input_ids.size(1)
        x = torch.cat([self.emb(decoder_input_ids), pooled[:, None].expand(-1, decoder_input_ids.size(1), -1)], -1)
        return ModelOutput(logits=self.head(x[:, -1:] if last_only else x))

    def new_cache(self):
        return CountingCache()


def test_seq2seq_decoders_drive_a_stand_in_and_the_real_model():
    from attnlab.models.seq2seq import Seq2Seq, Seq2SeqConfig

    torch.manual_seed(0)
    stand_in = MeanPoolSeq2Seq().eval()
    assert isinstance(stand_in, Seq2SeqLM)
    x = torch.tensor([[3, 4, 5, 0], [6, 3, 0, 0]])
    greedy = greedy_decode(stand_in, x, max_new_tokens=6)
    assert greedy.sequences.shape[0] == 2 and greedy.sequences.shape[1] <= 6
    assert torch.equal(beam_search(stand_in, x, beam_width=1, max_new_tokens=6).sequences, greedy.sequences)
    wide = beam_search(stand_in, x, beam_width=3, max_new_tokens=6, length_penalty=0.0)
    assert wide.beams.shape[:2] == (2, 3)
    # the real model through its own method, which delegates here
    model = Seq2Seq(Seq2SeqConfig.from_name("tiny", vocab_size=7)).eval()
    assert isinstance(model, Seq2SeqLM)
    assert torch.equal(
        model.generate(x, beam_width=2, max_new_tokens=5).sequences,
        beam_search(model, x, beam_width=2, max_new_tokens=5).sequences,
    )


@pytest.mark.parametrize("kind", ["gpt", "llama"])
def test_a_cropped_cache_is_the_cache_of_the_shorter_prefix(kind):
    """Take back the last 4 tokens, feed 4 others: the logits are those of that sequence fed straight."""
    from attnlab.models.gpt import GPT, GPTConfig
    from attnlab.models.llama import Llama, LlamaConfig

    torch.manual_seed(0)
    model = (
        GPT(GPTConfig.from_name("nano", vocab_size=23))
        if kind == "gpt"
        else Llama(LlamaConfig.from_name("nano", vocab_size=23))
    ).eval()
    first, second = torch.randint(0, 23, (2, 1, 10))
    straight = torch.cat([first[:, :6], second[:, 6:]], dim=1)  # (1, 10)
    with torch.no_grad():
        cache = model.new_cache()
        model(first, cache=cache)
        cache.crop(6)
        assert cache.length == 6
        again = model(second[:, 6:], cache=cache).logits  # positions 6..9
        reference = model(straight).logits[:, 6:]
    torch.testing.assert_close(again, reference, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="cannot crop a cache of 10 positions to 11"):
        cache.crop(11)
