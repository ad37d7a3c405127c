"""RNNSeq2Seq: the recurrent encoder-decoder, with and without attention (before the transformer).

Three models in one class, chosen by `config.attention`:

  * "none": the fixed-size bottleneck of Sutskever, Vinyals and Le (2014) and Cho et al.
    (2014). The encoder reads the source into its final state; the decoder starts from that
    one vector and never sees the source again. Long sources do not fit in it.
  * "additive": Bahdanau, Cho and Bengio (2015). A bidirectional encoder keeps one vector
    h_j per source position; before each step the decoder scores every h_j against its
    previous state with a small MLP, e_tj = v_a^T tanh(W_a s_{t-1} + U_a h_j), and reads
    the context c_t = sum_j alpha_tj h_j, alpha = softmax(e), into the recurrence.
  * "dot" / "general": Luong, Pham and Manning (2015), global attention with input
    feeding. The decoder steps first, then scores its new state s_t against every h_j by a
    product (s_t^T h_j, or s_t^T W_a h_j), and predicts from h~_t = tanh(W_c [c_t; s_t]);
    h~_t is also fed to the next step.

Reads top to bottom:

    source ids (B, S) -> embedding (B, S, E) -> GRU/LSTM encoder (packed: padding never read)
                      -> h_j (B, S, H) and the final state -> s_0 = tanh(W_s h_final) (B, L, H)
    target ids, shifted right (B, T) -> one decoder step per token:
        [attention over h_j] -> GRU/LSTM step -> output layer -> logits (B, T, V)

It meets `attnlab.decoding.protocol.Seq2SeqLM`, so `attnlab.decoding.seq2seq` decodes it
greedily or with beam search exactly as the transformer (`attnlab.models.seq2seq.Seq2Seq`);
its "cache" (`RecurrentCache`) is the decoder state after the tokens fed so far.

Simplifications against the papers, each a line below: Bahdanau's maxout output layer is a
tanh layer, and the decoder starts from both encoder directions' final states (Cho et al.),
not only the backward one. Sources are right-padded (a left-padded mask is refused).

Notation: B batch (N rows while decoding), S source length, T target length, E embed_dim,
H hidden_dim, A attention_dim, L num_layers, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attnlab.configs.rnn_seq2seq import RNNSeq2SeqConfig
from attnlab.decoding import seq2seq as seq2seq_decoding
from attnlab.decoding.seq2seq import Generation
from attnlab.models.base import CheckpointMixin
from attnlab.models.outputs import ModelOutput, cross_entropy_loss
from attnlab.models.seq2seq import shift_right

__all__ = [
    "RNNSeq2Seq",
    "RNNSeq2SeqConfig",
    "RNNEncoderOutput",
    "RecurrentCache",
    "AdditiveAttention",
    "MultiplicativeAttention",
]

State = tuple[Tensor, Tensor | None, Tensor | None]  # (h (N, L, H), LSTM cell c (N, L, H), Luong's h~ (N, H))


@dataclass
class RNNEncoderOutput:
    """What `RNNSeq2Seq.encode` returns (and `decode` reads); every tensor is batch-first."""

    last_hidden_state: Tensor  # (B, S, H) the annotations h_j the decoder attends to (0 on padding)
    attention_mask: Tensor  # (B, S) bool, True on real source tokens
    initial_state: Tensor  # (B, L, H) s_0, the decoder's first state (the bottleneck without attention)
    initial_cell: Tensor | None = None  # (B, L, H) the LSTM's first cell state (None for a GRU)


class RecurrentCache:
    """The decoder state after each token fed so far: a `DecodingCache` for a recurrent decoder.

    A recurrence needs only its last state to go on; the earlier ones are kept so that `crop`
    can take tokens back, as the transformer's key/value cache can.
    """

    def __init__(self) -> None:
        self.states: list[State] = []  # states[i]: after i + 1 tokens

    @property
    def length(self) -> int:
        """Tokens fed so far."""
        return len(self.states)

    @property
    def last(self) -> State:
        return self.states[-1]

    def append(self, state: State) -> None:
        self.states.append(state)

    def reorder(self, index: Tensor) -> None:
        """Keep the rows `index` (N,), in that order (beam search follows its beams)."""
        self.states = [
            tuple(None if t is None else t.index_select(0, index) for t in s)  # type: ignore[misc]
            for s in self.states
        ]

    def crop(self, length: int) -> None:
        """Forget the tokens from `length` on."""
        del self.states[length:]


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over source positions (last axis) that gives padding exactly 0 weight.

    Args:
        scores: (N, S) e_tj. mask: (N, S) bool, True on real tokens (at least one per row).
    """
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


class AdditiveAttention(nn.Module):
    """Bahdanau et al. (2015), eq. (6) and appendix A.1.2: an MLP scores each source position.

    Its NumPy twin, with a hand-written backward, is `attnlab.scratch.additive_attention`.
    """

    def __init__(self, query_dim: int, memory_dim: int, attention_dim: int):
        super().__init__()
        self.W_a = nn.Linear(query_dim, attention_dim, bias=False)
        self.U_a = nn.Linear(memory_dim, attention_dim, bias=False)
        self.v_a = nn.Linear(attention_dim, 1, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        """U_a h_j for every source position, computed once per source: (N, S, H) -> (N, S, A)."""
        return self.U_a(memory)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """(N, H) s_{t-1}, (N, S, A) U_a h_j, (N, S, H) h_j, (N, S) mask -> context (N, H), weights (N, S)."""
        z = torch.tanh(self.W_a(query)[:, None, :] + keys)  # (N, S, A) tanh(W_a s_{t-1} + U_a h_j)
        e = self.v_a(z)[..., 0]  # (N, S) e_tj = v_a^T tanh(W_a s_{t-1} + U_a h_j)
        alpha = masked_softmax(e, mask)  # (N, S) alpha_tj = exp(e_tj) / sum_k exp(e_tk)
        context = torch.einsum("ns,nsh->nh", alpha, memory)  # (N, H) c_t = sum_j alpha_tj h_j
        return context, alpha


class MultiplicativeAttention(nn.Module):
    """Luong et al. (2015), eq. (8): score(s_t, h_j) = s_t^T h_j (dot) or s_t^T W_a h_j (general)."""

    def __init__(self, hidden_dim: int, kind: str):
        super().__init__()
        self.kind = kind
        self.W_a = nn.Linear(hidden_dim, hidden_dim, bias=False) if kind == "general" else None

    def keys(self, memory: Tensor) -> Tensor:
        """h_j (dot) or W_a h_j (general), computed once per source: (N, S, H) -> (N, S, H)."""
        return memory if self.W_a is None else self.W_a(memory)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """(N, H) s_t, (N, S, H) keys, (N, S, H) h_j, (N, S) mask -> context (N, H), weights (N, S)."""
        score = torch.einsum("nh,nsh->ns", query, keys)  # (N, S) s_t^T h_j, or s_t^T W_a h_j
        alpha = masked_softmax(score, mask)  # (N, S) a_t(s) = softmax over the source
        context = torch.einsum("ns,nsh->nh", alpha, memory)  # (N, H) c_t = sum_j a_tj h_j
        return context, alpha


class RNNSeq2Seq(CheckpointMixin, nn.Module):
    """Recurrent encoder-decoder without attention, with additive or with multiplicative attention.

    Args:
        config: an `RNNSeq2SeqConfig` (e.g. `RNNSeq2SeqConfig.from_name("small", attention="dot")`).
    """

    model_type = "rnn_seq2seq"
    config_class = RNNSeq2SeqConfig

    def __init__(self, config: RNNSeq2SeqConfig):
        super().__init__()
        self.config = c = config
        H, E, L = c.hidden_dim, c.embed_dim, c.num_layers
        rnn_class = {"gru": nn.GRU, "lstm": nn.LSTM}[c.cell]
        between = c.dropout if L > 1 else 0.0  # PyTorch warns about dropout with one layer
        self.tok_emb = nn.Embedding(c.vocab_size, E)  # shared by source and target
        self.drop = nn.Dropout(c.dropout)
        directions = 2 if c.bidirectional else 1
        self.encoder = rnn_class(
            E, H // directions, num_layers=L, batch_first=True, dropout=between, bidirectional=c.bidirectional
        )
        self.bridge = nn.Linear(H, H)  # s_0 = tanh(W_s h_final) (Bahdanau: W_s h<-_1; Cho: tanh(V c))
        self.bridge_cell = nn.Linear(H, H) if c.cell == "lstm" else None  # the LSTM's first cell state
        attention = c.attention
        # the decoder reads y_{t-1}, and also c_t (Bahdanau) or h~_{t-1} (Luong's input feeding)
        self.decoder = rnn_class(
            E if attention == "none" else E + H, H, num_layers=L, batch_first=True, dropout=between
        )
        if attention == "additive":
            self.attention = AdditiveAttention(H, H, c.score_dim)
            self.output_proj = nn.Linear(2 * H + E, H)  # t_i = tanh(W_o [s_i; c_i; E y_{i-1}]) (paper: maxout)
        elif attention in ("dot", "general"):
            self.attention = MultiplicativeAttention(H, attention)
            self.combine = nn.Linear(2 * H, H, bias=False)  # h~_t = tanh(W_c [c_t; s_t]), Luong eq. (5)
        self.lm_head = nn.Linear(H, c.vocab_size)  # p(y_t | y_<t, x) = softmax(W_s o_t)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Embeddings and linear layers ~ N(0, init_std) with zero biases; the recurrent cells keep PyTorch's init."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=self.config.init_std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    # -- the encoder -----------------------------------------------------------

    def encode(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> RNNEncoderOutput:
        """Read the source into annotations h_j and the decoder's first state.

        Args:
            input_ids: (B, S) source ids, right-padded (normally ending with `<eos>`).
            attention_mask: (B, S) 1 for real tokens, 0 for padding; default `input_ids != pad_id`.
        Returns:
            `RNNEncoderOutput`.
        Raises:
            ValueError: a row without tokens, or padding before a real token (left padding).
        """
        c = self.config
        B, S = input_ids.shape
        mask = (input_ids != c.pad_id) if attention_mask is None else attention_mask.bool()
        lengths = mask.sum(dim=1)  # (B,)
        if bool((lengths < 1).any()):
            raise ValueError("every source needs at least one real token")
        if not torch.equal(mask, torch.arange(S, device=mask.device)[None, :] < lengths[:, None]):
            raise ValueError("the recurrent encoder reads right-padded sources: padding must follow the tokens")
        x = self.drop(self.tok_emb(input_ids))  # (B, S, E)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)  # padding unread
        out, final = self.encoder(packed)
        h, _ = pad_packed_sequence(out, batch_first=True, total_length=S)  # (B, S, H) h_j = [h->_j; h<-_j]
        final_h, final_c = final if c.cell == "lstm" else (final, None)  # (L * directions, B, H / directions)
        s0 = torch.tanh(self.bridge(self._by_layer(final_h)))  # (B, L, H) s_0 = tanh(W_s h_final)
        c0 = self.bridge_cell(self._by_layer(final_c)) if self.bridge_cell is not None else None  # (B, L, H)
        return RNNEncoderOutput(last_hidden_state=self.drop(h), attention_mask=mask, initial_state=s0, initial_cell=c0)

    def _by_layer(self, final: Tensor) -> Tensor:
        """(L * directions, B, H / directions) final states -> (B, L, H), both directions side by side."""
        L = self.config.num_layers
        directions = final.size(0) // L
        return final.view(L, directions, final.size(1), -1).permute(2, 0, 1, 3).reshape(final.size(1), L, -1)

    # -- the decoder -----------------------------------------------------------

    def decode(
        self,
        decoder_input_ids: Tensor,
        encoder_output: RNNEncoderOutput,
        *,
        cache: RecurrentCache | None = None,
        output_attentions: bool = False,
        last_only: bool = False,
    ) -> ModelOutput:
        """Next-token logits for every target position, one recurrent step per token.

        Args:
            decoder_input_ids: (N, T) target ids starting with `<bos>` (shifted right); with a
                non-empty cache, the tokens after the cached ones.
            encoder_output: what `encode` returned for the same rows.
            cache: a `RecurrentCache`: the decoder continues from its last state and records each new one.
            output_attentions: return the attention weights as `cross_attentions` = ((N, 1, T, S),).
            last_only: logits for the last position only (generation).
        Returns:
            `ModelOutput` with logits (N, T, V) (or (N, 1, V) with `last_only`).
        """
        c = self.config
        memory, mask = encoder_output.last_hidden_state, encoder_output.attention_mask  # (N, S, H), (N, S)
        if cache is not None and cache.length > 0:
            h, cell, feed = cache.last
        else:
            h, cell = encoder_output.initial_state, encoder_output.initial_cell  # (N, L, H)
            feed = memory.new_zeros(memory.size(0), c.hidden_dim) if c.attention in ("dot", "general") else None
        x = self.drop(self.tok_emb(decoder_input_ids))  # (N, T, E)
        keys = self.attention.keys(memory) if c.attention != "none" else None  # (N, S, A), once per call
        state = self._to_rnn(h, cell)

        outputs: list[Tensor] = []
        weights: list[Tensor] = []
        if c.attention == "none" and cache is None:  # no attention: the whole target in one call
            s, state = self.decoder(x, state)  # (N, T, H) s_t = f(s_{t-1}, E y_{t-1})
            outputs.append(s)
        steps = 0 if outputs else x.size(1)  # else one step per token: attention reads the state between steps
        for t in range(steps):
            y = x[:, t]  # (N, E) E y_{t-1}
            if c.attention == "none":
                s, state = self.decoder(y[:, None], state)  # (N, 1, H) s_t = f(s_{t-1}, E y_{t-1})
                o = s[:, 0]  # (N, H) the prediction reads s_t alone: the source is only in s_0
            elif c.attention == "additive":
                context, alpha = self.attention(self._top(state), keys, memory, mask)  # (N, H), (N, S) from s_{t-1}
                s, state = self.decoder(torch.cat([y, context], -1)[:, None], state)  # s_t = f(s_{t-1}, [E y; c_t])
                o = torch.tanh(self.output_proj(torch.cat([s[:, 0], context, y], -1)))  # (N, H) t_t
                weights.append(alpha)
            else:
                s, state = self.decoder(torch.cat([y, feed], -1)[:, None], state)  # s_t = f(s_{t-1}, [E y; h~_{t-1}])
                context, alpha = self.attention(s[:, 0], keys, memory, mask)  # (N, H), (N, S) from s_t
                o = feed = torch.tanh(self.combine(torch.cat([context, s[:, 0]], -1)))  # (N, H) h~_t
                weights.append(alpha)
            outputs.append(o[:, None])
            if cache is not None:
                cache.append((*self._from_rnn(state), feed))
        out = torch.cat(outputs, dim=1)  # (N, T, H)
        if last_only:
            out = out[:, -1:]
        logits = self.lm_head(self.drop(out))  # (N, T, V)
        attentions = None
        if output_attentions and weights:
            attentions = (torch.stack(weights, dim=1)[:, None],)  # (N, 1, T, S): one "head"
        return ModelOutput(logits=logits, cross_attentions=attentions)

    def _to_rnn(self, h: Tensor, cell: Tensor | None) -> Tensor | tuple[Tensor, Tensor]:
        """Batch-first (N, L, H) states -> what nn.GRU / nn.LSTM take: (L, N, H) (and the cell)."""
        h = h.transpose(0, 1).contiguous()
        return (h, cell.transpose(0, 1).contiguous()) if cell is not None else h

    def _from_rnn(self, state: Tensor | tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor | None]:
        if isinstance(state, tuple):
            return state[0].transpose(0, 1), state[1].transpose(0, 1)
        return state.transpose(0, 1), None

    def _top(self, state: Tensor | tuple[Tensor, Tensor]) -> Tensor:
        """(N, H) the top layer's hidden state: the query of the attention."""
        return (state[0] if isinstance(state, tuple) else state)[-1]

    # -- both ----------------------------------------------------------------

    def forward(
        self,
        input_ids: Tensor,
        decoder_input_ids: Tensor | None = None,
        labels: Tensor | None = None,
        *,
        attention_mask: Tensor | None = None,
        encoder_output: RNNEncoderOutput | None = None,
        cache: RecurrentCache | None = None,
        output_attentions: bool = False,
        last_only: bool = False,
    ) -> ModelOutput:
        """Encode the source, decode the target with teacher forcing, score it.

        Args:
            input_ids: (B, S) source ids.
            decoder_input_ids: (B, T) `<bos> y1 .. yn`; default: `labels` shifted right.
            labels: (B, T) `y1 .. yn <eos>`; -100 marks positions that are not scored.
            attention_mask: (B, S) source mask, 1 = real token (default `input_ids != pad_id`).
            encoder_output: reuse an earlier `encode` result.
            cache: a `RecurrentCache` for incremental decoding.
            output_attentions: the decoder's attention over the source in `cross_attentions`.
            last_only: logits for the last target position only.
        Returns:
            `ModelOutput`: logits (B, T, V), loss (mean cross-entropy over scored positions).
        """
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("give decoder_input_ids or labels (the decoder needs a target)")
            decoder_input_ids = shift_right(labels, self.config.bos_id, self.config.pad_id)
        if encoder_output is None:
            encoder_output = self.encode(input_ids, attention_mask)
        out = self.decode(
            decoder_input_ids, encoder_output, cache=cache, output_attentions=output_attentions, last_only=last_only
        )
        out.loss = cross_entropy_loss(out.logits, labels)
        out.extras["encoder_last_hidden_state"] = encoder_output.last_hidden_state
        return out

    # -- utilities ---------------------------------------------------------------

    def num_parameters(self) -> int:
        """Parameter count."""
        return sum(p.numel() for p in self.parameters())

    def new_cache(self) -> RecurrentCache:
        """An empty decoder-state cache for `decode(..., cache=...)`."""
        return RecurrentCache()

    @torch.no_grad()
    def generate(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        *,
        beam_width: int = 1,
        max_new_tokens: int | None = None,
        length_penalty: float = 1.0,
        use_cache: bool = True,
    ) -> Generation:
        """Greedy (`beam_width=1`) or beam-search decoding: `attnlab.decoding.seq2seq.generate`."""
        return seq2seq_decoding.generate(
            self,
            input_ids,
            attention_mask,
            beam_width=beam_width,
            max_new_tokens=max_new_tokens,
            length_penalty=length_penalty,
            use_cache=use_cache,
        )
