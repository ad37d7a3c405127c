"""Attention page: heatmaps per layer and head, and the interactive head view, for our GPT and MiniLM."""

import streamlit as st

from attnlab.app import generation, ui
from attnlab.viz import attention as A
from attnlab.viz.headview import head_view_html
from attnlab.viz.models import attention_for_text, attention_model_types

ui.setup_page(
    "Attention",
    "Every head of every layer turns each token into a weighted mix of the tokens it attends to. "
    "Rows are the tokens attending (queries), columns the tokens attended to (keys); each row sums to 1.",
)
root = ui.runs_root()

SOURCES = {
    "checkpoint": "Our GPT, LLaMA-style model or encoder (a checkpoint in the runs folder)",
    "minilm": "MiniLM (all-MiniLM-L6-v2, a real pretrained encoder)",
}
# MiniLM opens on the sentence of the README and on the head notebook 06 finds for it: the one whose
# query "it" puts the most weight on "animal" (layer 3, head 1); many other heads mostly look at [CLS].
MINILM_TEXT = "The animal didn't cross the street because it was tired."
MINILM_HEAD = (3, 1)  # (layer, head)
source = st.radio("Model", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="attn_source")

model = tokenizer = None
name = ""
if source == "checkpoint":
    entry = ui.pick_checkpoint(
        root,
        attention_model_types(),
        key="attn_checkpoint",
        label="Checkpoint",
        empty=ui.checkpoint_commands("causal_lm") + " Or look at MiniLM above.",
    )
    if entry is not None:
        with ui.friendly():
            model, tokenizer = ui.load_checkpoint(root, entry, attention_model_types())
            name = entry.name
    default_text = "The function returns a list."
else:
    with ui.friendly("MiniLM is not available: "):
        model, tokenizer = ui.minilm()
        name = "all-MiniLM-L6-v2"
    default_text = MINILM_TEXT
if model is None:
    st.stop()
if tokenizer is None:
    st.warning("This checkpoint has no tokenizer, so it cannot read text; pick another one.")
    st.stop()

c1, c2 = st.columns([4, 1])
text = c1.text_input("Sentence", value=default_text, key=f"attn_text_{source}", max_chars=2000)
truncate = c2.checkbox(
    "Cut to the context",
    value=True,
    key="attn_truncate",
    help="Keep the first tokens that fit the model's context instead of refusing long text.",
)

tokens = weights = None
with ui.friendly():
    tokens, weights = attention_for_text(model, tokenizer, text, truncate=truncate)
if weights is None:
    st.stop()
L, H, T, _ = weights.shape
shown = " · ".join(generation.display_token(t) for t in tokens[:40])
st.caption(f"{name}: {L} layers x {H} heads, {T} tokens: {shown}{' …' if T > 40 else ''}")

if source == "minilm":
    st.caption(
        "Attention sinks: a head whose query has nothing useful to look at must still spend its weights "
        "(each row sums to 1), so many heads park them on [CLS] or [SEP]. "
        f"Layer {MINILM_HEAD[0]}, head {MINILM_HEAD[1]}, which opens below, does something instead: "
        "in the sentence about the animal it links “it” to “animal”."
    )

VIEWS = ["One head", "All heads", "Mean over heads", "Head view"]
view = st.radio("View", VIEWS, horizontal=True, key="attn_view", label_visibility="collapsed")
if view == "One head":
    c1, c2 = st.columns(2)
    minilm_head = source == "minilm" and MINILM_HEAD[0] < L and MINILM_HEAD[1] < H
    first = MINILM_HEAD if minilm_head else (L - 1, 0)
    layer = c1.selectbox("Layer", range(L), index=first[0], key=f"attn_layer_{source}")
    head = c2.selectbox("Head", range(H), index=first[1], key=f"attn_head_{source}")
    with ui.friendly():
        layer, head = A.check_index(layer, L, "layer"), A.check_index(head, H, "head")
        ui.show_figure(
            A.plot_attention_head(weights[layer, head], tokens, title=f"{name}: layer {layer}, head {head}"),
            width="content" if T <= 12 else 860,
        )
elif view == "All heads":
    ui.show_figure(A.plot_attention_grid(weights, tokens, title=f"{name}: every layer and head"))
elif view == "Mean over heads":
    ui.show_figure(A.plot_attention_mean(weights, tokens, title=f"{name}: each layer's heads averaged"))
else:
    st.caption(
        "Hover a token to see only its lines; pick the layer and head at the top of the view. "
        "Works offline (no network)."
    )
    page = head_view_html(weights, tokens, title=f"Head view: {name}", subtitle=text[:120])
    st.iframe(page, height="content", alt=f"attention head view of {name}")
