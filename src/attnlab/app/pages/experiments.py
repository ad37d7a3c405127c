"""Experiments page: activation patching and head ablation on a trained language model (`attnlab.interp`)."""

import copy
import html
import threading

import streamlit as st

from attnlab.app import experiments, generation, ui
from attnlab.interp import hook_names, model_heads
from attnlab.interp.figures import plot_head_matrix, plot_patching

DEFAULT_CLEAN = "the key, the ke"  # a copying task: the answer (y) depends on an earlier token
DEFAULT_CORRUPTED = "the box, the bo"  # same length, and the answer changes (x)
DEFAULT_PROMPT = "The return value is None."
HEAD_FIGURE_WIDTH = 560  # pixels: a layers x heads grid is small; at full width its labels would be huge

ui.setup_page(
    "Experiments",
    "Attention maps show where a head looks; these experiments show what it does. Patching copies one "
    "activation from a clean run into a corrupted one and measures how much of the clean answer comes back; "
    "ablation switches heads off and shows how the text and the loss change.",
)
root = ui.runs_root()
entry, model, tokenizer = ui.language_model(root, key="exp_checkpoint")
names = None
with ui.friendly("This model cannot be experimented on: "):
    names = hook_names(model)
if not names:
    st.stop()


@st.cache_resource(show_spinner=False, max_entries=4)
def _own_copy(root: str, relative: str, modified: float, model_id: int, _model):
    """A private copy of the model and a lock: the hooks attached here never reach the forwards of other
    pages and browser sessions, which share the cached model."""
    return copy.deepcopy(_model).eval(), threading.Lock()


model, lock = _own_copy(str(root), entry.relative, entry.modified, id(model), model)
KEY = (str(root), entry.relative, entry.modified)  # what the cached results below depend on besides their inputs
layers, heads = model_heads(model)


@st.cache_data(show_spinner=False, max_entries=64)
def _defaults(key, clean_ids, corrupted_ids, _model, _lock):
    with _lock:
        return experiments.default_answers(_model, clean_ids, corrupted_ids)


@st.cache_data(show_spinner="patching ...", max_entries=16)
def _patching(key, clean_ids, corrupted_ids, answer, wrong, _model, _tokenizer, _lock):
    with _lock:
        return experiments.run_patching(_model, _tokenizer, clean_ids, corrupted_ids, answer, wrong)


@st.cache_data(show_spinner=False, max_entries=8)
def _reference(key, data_source, _model, _tokenizer):
    return experiments.reference_batch(_model, _tokenizer, data_source)


@st.cache_data(show_spinner="ablating ...", max_entries=16)
def _ablation(key, ids, heads_off, kind, max_new, _reference_ids, _model, _tokenizer, _lock):
    with _lock:
        return experiments.run_ablation(_model, _tokenizer, ids, heads_off, kind, _reference_ids, max_new)


def show_tokens(ids) -> None:
    labels = generation.token_labels(tokenizer, ids)
    shown = " | ".join(labels[:40]) + (" | ..." if len(labels) > 40 else "")
    st.caption(f"**{len(ids)} token{'s' if len(ids) != 1 else ''}**: {shown}")


def token_or_default(text: str, default: int, what: str):
    """The typed token, or `default` when the box is empty (None after a friendly message)."""
    if not text:
        return default
    with ui.friendly(f"{what.capitalize()}: "):
        return experiments.single_token(tokenizer, text, what)
    return None


SECTIONS = ["Patching", "Ablation"]
section = st.radio("Experiment", SECTIONS, horizontal=True, key="exp_section", label_visibility="collapsed")

# --- activation patching ---------------------------------------------------------------------------------
if section == "Patching":
    st.caption(
        "Type a clean prompt and a corrupted one that changes the answer, with the same number of tokens: "
        "patching copies the clean run's activations into the corrupted run position by position."
    )
    left, right = st.columns(2)
    clean_text = left.text_input("Clean prompt", value=DEFAULT_CLEAN, key="exp_clean", max_chars=2000)
    corrupted_text = right.text_input("Corrupted prompt", value=DEFAULT_CORRUPTED, key="exp_corrupted", max_chars=2000)
    clean_ids = corrupted_ids = None
    with left, ui.friendly("Clean prompt: "):
        clean_ids = experiments.prompt_ids(model, tokenizer, clean_text)
        show_tokens(clean_ids)
    with right, ui.friendly("Corrupted prompt: "):
        corrupted_ids = experiments.prompt_ids(model, tokenizer, corrupted_text)
        show_tokens(corrupted_ids)
    if clean_ids is None or corrupted_ids is None:
        st.stop()
    same = False
    with ui.friendly():
        experiments.check_same_length(clean_ids, corrupted_ids)
        same = True
    if not same:
        st.stop()

    clean_ids, corrupted_ids = tuple(clean_ids), tuple(corrupted_ids)
    top_clean, top_corrupted, runner_up = _defaults(KEY, clean_ids, corrupted_ids, model, lock)
    shown = generation.token_labels(tokenizer, [top_clean, top_corrupted])
    left, right = st.columns(2)
    answer_text = left.text_input(
        "Answer (one token)",
        value="",
        key="exp_answer",
        help="The token the clean prompt should lead to. Empty: the model's top prediction on the clean prompt.",
    )
    wrong_text = right.text_input(
        "Wrong token (one token)",
        value="",
        key="exp_wrong",
        help="The token it competes with. Empty: the model's top prediction on the corrupted prompt.",
    )
    if not answer_text:
        left.caption(f"Empty: the model's top prediction on the clean prompt, `{shown[0]}`.")
    if not wrong_text:
        right.caption(
            f"Empty: the model's top prediction on the corrupted prompt, `{shown[1]}`"
            + (" (its first choice is the answer too, so its second one)." if runner_up else ".")
        )
    with left:
        answer = token_or_default(answer_text, top_clean, "answer")
    with right:
        wrong = token_or_default(wrong_text, top_corrupted, "wrong token")
    if answer is None or wrong is None:
        st.stop()

    run = None
    with ui.friendly():
        run = _patching(KEY, clean_ids, corrupted_ids, answer, wrong, model, tokenizer, lock)
    if run is None:
        st.stop()
    a, w = generation.token_labels(tokenizer, [run.answer, run.wrong])
    c1, c2, c3 = st.columns(3)
    c1.metric(f"Logit difference {a} − {w}, clean", f"{run.clean_logit_diff:.3f}")
    c2.metric(f"Logit difference {a} − {w}, corrupted", f"{run.corrupted_logit_diff:.3f}")
    row, col, best = run.residual.best()
    c3.metric(f"Best residual patch: {run.residual.row_labels[row]}, position {col}", f"{best:.2f}")
    if abs(run.clean_logit_diff - run.corrupted_logit_diff) < 0.1:
        st.caption(
            f"The two prompts give almost the same logit difference for this model "
            f"({abs(run.clean_logit_diff - run.corrupted_logit_diff):.3f} apart), so the normalised values below are "
            "noisy: train the model longer, or pick a corruption that changes its answer."
        )
    st.caption(
        f"Each cell reruns the corrupted prompt with one activation taken from the clean run and shows the normalised "
        f"logit difference (LD_patched − LD_corrupted) / (LD_clean − LD_corrupted), where LD = logit[{a}] − "
        f"logit[{w}] at the last position: 1 means that activation alone brings the clean answer back, 0 that it "
        "changes nothing."
    )
    ui.show_figure(
        plot_patching(run.residual, title="residual stream: patch one layer's input at one position"),
        caption=f"Rows: the stream entering each block (final: after the last one); columns: the "
        f"{len(clean_ids)} clean tokens.",
    )
    ui.show_figure(
        plot_patching(run.heads, title="each head's output"),
        caption="One head's output copied from the clean run (all positions at once), layers x heads.",
        width=HEAD_FIGURE_WIDTH,
    )

# --- ablation ---------------------------------------------------------------------------------------------
else:
    text = st.text_input("Prompt", value=DEFAULT_PROMPT, key="exp_prompt", max_chars=2000)
    ids = None
    with ui.friendly():
        ids = experiments.prompt_ids(model, tokenizer, text)
        show_tokens(ids)
    if ids is None:
        st.stop()

    st.markdown("**Heads to switch off**")
    off = []
    for layer in range(layers):
        columns = st.columns(max(heads, 4))
        for head in range(heads):
            label = experiments.head_label(layer, head)
            if columns[head].checkbox(label, key=f"exp_off_{label}"):
                off.append((layer, head))
    left, right = st.columns(2)
    kind = left.radio(
        "Ablation",
        experiments.ABLATION_KINDS,
        horizontal=True,
        key="exp_kind",
        format_func={"zero": "zero", "mean": "mean"}.get,
        help="Resample ablation is not offered: generation feeds one new token at a time, so there is no "
        "other input of the same length to take a head's output from.",
    )
    max_new = right.slider(
        "Tokens to generate (greedy)", 1, experiments.MAX_NEW_TOKENS, 40, step=1, key="exp_new_tokens"
    )
    reference = None
    if kind == "zero":
        st.caption("Zero ablation: a switched-off head writes nothing into the residual stream.")
    else:
        reference = _reference(KEY, entry.metadata.get("data_source"), model, tokenizer)
        st.caption(
            "Mean ablation: a switched-off head writes its average output instead, averaged over "
            f"{reference.source}, and over their positions."
        )

    run = None
    with ui.friendly():
        run = _ablation(
            KEY,
            tuple(ids),
            tuple(off),
            kind,
            int(max_new),
            None if reference is None else reference.ids,
            model,
            tokenizer,
            lock,
        )
    if run is None:
        st.stop()
    names_off = ", ".join(experiments.head_label(layer, head) for layer, head in run.heads_off)
    left, right = st.columns(2)
    for column, title, continuation, loss, testid in (
        (left, "Every head on", run.continuation_on, run.loss_on, "ablation-on"),
        (
            right,
            f"{names_off} off" if names_off else "No head off yet",
            run.continuation_off,
            run.loss_off,
            "ablation-off",
        ),
    ):
        with column:
            st.subheader(title)
            st.html(
                f'<div class="attnlab-generated" data-testid="{testid}"><span class="prompt">{html.escape(text)}'
                f'</span><span class="new">{html.escape(continuation)}</span></div>'
            )
            delta = None if column is left or not run.heads_off else f"{loss - run.loss_on:+.4f}"
            st.metric("Loss on the prompt (nats per token)", f"{loss:.4f}", delta=delta, delta_color="inverse")
    if not run.heads_off:
        right.caption("Tick heads above to switch them off; until then both sides are the same model.")
    st.caption(
        f"Greedy decoding ({run.kind} ablation), so the same settings always give the same text. The loss is the "
        "mean next-token cross-entropy over the prompt."
    )
    ui.show_figure(
        plot_head_matrix(
            run.per_head.values,
            title=f"loss change per head ({run.kind})",
            label="loss change (nats)",
        ),
        caption="Each head switched off alone. Red: the loss on the prompt rises without that head (the head "
        "helps here); blue: it falls.",
        width=HEAD_FIGURE_WIDTH,
    )
