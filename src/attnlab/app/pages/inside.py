"""Inside the block: hidden-state norms per layer, what each sub-layer does, and the logit lens."""

import streamlit as st

from attnlab.analysis import hidden_state_stats
from attnlab.analysis.hidden_states import collect_hidden_states
from attnlab.analysis.lens import logit_lens, stream_norms, sublayer_effects
from attnlab.app import figures, generation, ui
from attnlab.viz.hidden_states import plot_hidden_state_stats

ui.setup_page(
    "Inside the block",
    "A GPT block adds to a running 'residual stream': attention adds what other tokens say, the "
    "feed-forward layer adds what it knows, LayerNorms rescale what each branch reads. "
    "Here you see how big each step is, and what every layer would already predict.",
)
root = ui.runs_root()
entry, model, tokenizer = ui.language_model(root, key="inside_checkpoint")

text = st.text_input("Text", value="The return value is", key="inside_text", max_chars=2000)
ids = None
with ui.friendly():
    ids, cut = generation.text_ids(model, tokenizer, text, truncate=True)
    if cut:
        st.caption(f"The text is longer than the model's context; only its last {len(ids)} tokens are used.")
if ids is None:
    st.stop()
tokens = generation.token_labels(tokenizer, ids)

VIEWS = ["Hidden-state norms", "Each sub-layer", "Logit lens"]
view = st.radio("View", VIEWS, horizontal=True, key="inside_view", label_visibility="collapsed")
if view == "Hidden-state norms":
    ui.show_figure(figures.plot_stream_norms(stream_norms(model, ids), tokens))
    st.caption(
        "Pre-norm GPTs let the residual stream grow from layer to layer; the final LayerNorm "
        "rescales it before the output head."
    )
    stats = hidden_state_stats(collect_hidden_states(model, [ids]))
    ui.show_figure(plot_hidden_state_stats(stats, title=f"{entry.name}: hidden states layer by layer"))
    st.caption("The last entry is after the final LayerNorm (Hugging Face's layout).")

elif view == "Each sub-layer":
    effects = sublayer_effects(model, ids)
    ui.show_figure(figures.plot_sublayer_effects(effects))
    names = {
        "stream_in": "|x| in",
        "norm1": "|LN1|",
        "attn_out": "|attn|",
        "residual_attn": "|x+attn|",
        "norm2": "|LN2|",
        "ff_out": "|ff|",
        "residual_ff": "|h+ff|",
        "stream_out": "|out|",
        "attn_update": "attn/|x|",
        "ff_update": "ff/|h|",
        "attn_cosine": "cos attn",
        "ff_cosine": "cos ff",
    }
    rows = [
        {names.get(k, k): (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}
        for row in effects.rows()
    ]
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption(
        "Means over the tokens. |x| in: the stream entering the block; |LN1|, |LN2|: the LayerNorm outputs the "
        "branches read (pre-norm) or that leave each sub-layer (post-norm); |attn|, |ff|: what each branch adds; "
        "attn/|x| and ff/|h|: the update relative to the stream; cos: how much the stream keeps its direction."
    )

else:
    lens = logit_lens(model, ids, k=5)
    vocab = generation.token_labels(tokenizer, range(model.config.vocab_size))
    ui.show_figure(figures.plot_logit_lens(lens, tokens, vocab))
    st.caption(
        "Each row applies the final LayerNorm and the output head to the stream after that block, as if "
        "the network stopped there. The top row is the model's real prediction."
    )
    position = st.select_slider(
        "Position",
        options=list(range(len(tokens))),
        value=len(tokens) - 1,
        format_func=lambda i: f"{i}: {tokens[i]}",
        key="lens_position",
    )
    rows = [
        {
            "layer": lens.layer_names[r],
            **{
                f"#{j + 1}": f"{vocab[int(lens.top_ids[r, position, j])]} {lens.top_probs[r, position, j]:.2f}"
                for j in range(5)
            },
        }
        for r in range(lens.num_rows - 1, -1, -1)
    ]
    st.dataframe(rows, hide_index=True, width="stretch")
