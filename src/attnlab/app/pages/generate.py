"""Generate page: pick or train a GPT, sample token by token, look at each step."""

import html
import time

import streamlit as st

from attnlab.app import figures, generation, training, ui
from attnlab.models import registry
from attnlab.viz.attention import plot_attention_grid

ui.setup_page(
    "Generate",
    "A GPT writes one token at a time: at each step it gives every token a probability, "
    "temperature / top-k / top-p reshape them, and one token is drawn.",
)
root = ui.runs_root()
HEATMAP_DPI = 110  # the heatmap is shown at its natural width (see figures.MIN_LABEL_PX)

# --- the model -----------------------------------------------------------------------------
entry = ui.pick_checkpoint(
    root,
    ui.causal_lm_types(),
    key="gen_checkpoint",
    label="Trained language model",
    empty=ui.checkpoint_commands("causal_lm"),
)

job = ui.active_job()
with st.expander("Train a tiny model here", expanded=entry is None or (job is not None and not job.done)):
    st.write(
        "Trains on the corpus that ships with attnlab (CPython's documentation) and saves "
        f"the model in a new folder of `{root}`."
    )
    arch = st.radio(
        "Architecture",
        ui.causal_lm_types(),
        horizontal=True,
        key="train_arch",
        format_func=registry.model_label,
    )
    c1, c2 = st.columns(2)
    preset = c1.radio(
        "Size",
        training.TRAIN_PRESETS,
        horizontal=True,
        key="train_preset",
        format_func=lambda p: {"nano": "nano (2 layers, fastest)", "baby": "baby (4 layers, better text)"}[p],
    )
    seconds = c2.slider("Training time (seconds)", training.MIN_TRAIN_SECONDS, 120, 20, step=1, key="train_seconds")
    busy = job is not None and not job.done
    if busy and st.session_state.get("train_started") != job.relative:
        st.info(
            f"A training started elsewhere is still running (`{job.relative}`); wait for it to finish.",
            icon=":material/hourglass_top:",
        )
    if st.button("Train", key="train_button", disabled=busy, icon=":material/model_training:"):
        with ui.friendly():
            job = training.TrainingJob(root, preset, seconds, arch=arch)
            ui.start_job(job)
            st.session_state["train_started"] = job.relative
    if job is not None and st.session_state.get("train_started") == job.relative:
        bar = st.progress(0.0, text="starting ...")
        while not job.done:
            fraction, text = job.progress()
            bar.progress(fraction, text=f"{job.relative}: {text}")
            time.sleep(0.3)
        fraction, text = job.progress()
        bar.progress(1.0, text=f"{job.relative}: {text}")
        if job.error:
            st.warning(f"Training stopped: {job.error}", icon=":material/warning:")
        elif st.session_state.get("train_seen") != job.relative:
            st.session_state["train_seen"] = job.relative
            st.session_state["gen_checkpoint"] = job.relative  # select the new model
            st.session_state.pop("gen_result", None)
            st.rerun()
        else:
            st.success(f"Trained `{job.relative}`; it is selected above.", icon=":material/check_circle:")

if entry is None:
    st.stop()

model = tokenizer = None
with ui.friendly():
    model, tokenizer = ui.load_checkpoint(root, entry, ui.causal_lm_types())
if model is None:
    st.stop()
if tokenizer is None:
    st.warning("This checkpoint has no tokenizer, so it cannot read a prompt; pick another one.")
    st.stop()

# --- prompt and sampling ---------------------------------------------------------------------
with st.form("generate_form", border=True):
    prompt = st.text_area(
        "Prompt",
        value="The ",
        key="prompt",
        height=80,
        help="Text for the model to continue. It must use characters the model saw in training.",
    )
    c1, c2, c3, c4 = st.columns(4)
    temperature = c1.slider(
        "Temperature",
        0.0,
        generation.MAX_TEMPERATURE,
        generation.DEFAULT_TEMPERATURE,
        step=0.05,
        key="temperature",
        help="0 = greedy (always the most likely token); below 1 sharper, above 1 flatter.",
    )
    vocab = int(model.config.vocab_size)
    top_k = c2.slider("Top-k", 0, vocab, 0, step=1, key="top_k", help="Keep the k most likely tokens (0 = all).")
    top_p = c3.slider(
        "Top-p",
        0.05,
        1.0,
        1.0,
        step=0.05,
        key="top_p",
        help="Keep the smallest set of tokens whose probabilities add up to p (1 = all).",
    )
    max_new = c4.slider("Tokens to generate", 1, generation.MAX_NEW_TOKENS, 60, step=1, key="max_new_tokens")
    c5, c6 = st.columns([1, 3])
    seed = c5.number_input(
        "Seed",
        min_value=0,
        max_value=2**31 - 1,
        value=0,
        step=1,
        key="seed",
        help="The same seed and settings give the same text.",
    )
    submitted = st.form_submit_button("Generate", type="primary", icon=":material/play_arrow:")

# The result area is a fixed set of slots, filled in place: a new generation replaces the
# old text at once, and the heatmap slot says "updating" (never the previous figure) until
# this generation's heatmap is drawn, so what is on screen always belongs to the text shown.
UPDATING = "updating … (drawing the attention of this generation)"
status = st.empty()  # the spinner while generating, and its messages
if submitted:
    st.session_state.pop("gen_result", None)
    with status.container(), ui.friendly():
        sampling = generation.sampling_from_controls(
            temperature=temperature, top_k=top_k, top_p=top_p, max_new_tokens=max_new, seed=int(seed)
        )
        with st.spinner("generating ..."):
            result = generation.generate_steps(model, tokenizer, prompt, sampling)
            attention = generation.last_step_attention(model, tokenizer, result)
        st.session_state["gen_result"] = (entry.relative, result, attention, None)

saved = st.session_state.get("gen_result")
if saved is None or saved[0] != entry.relative:
    st.stop()
_, result, attention, heatmap_png = saved

text_area, steps_area, attention_area = st.container(), st.container(), st.container()
with attention_area:
    st.subheader("Attention of the last step")
    st.caption(
        "When it chose the last token, the newest position attended to these earlier tokens "
        "(one row per layer and head; each row sums to 1)."
    )
    heatmap = st.empty()
    if heatmap_png is None:
        heatmap.caption(UPDATING, help="The heatmap of the previous generation is gone; this one is being drawn.")
    else:
        heatmap.image(heatmap_png, width="content")

# --- the result ----------------------------------------------------------------------------------
with text_area:
    st.subheader("Generated text")
    st.html(
        f'<div class="attnlab-generated" data-testid="generated-text"><span class="prompt">{html.escape(result.prompt)}'
        f'</span><span class="new">{html.escape(result.continuation)}</span></div>'
    )
    if len(result.prompt_ids) > result.context:
        st.caption(
            f"The prompt is {len(result.prompt_ids)} tokens long; the model reads only its last {result.context}."
        )
    with st.expander("Plain text (to copy)"):
        st.code(result.text, language=None, wrap_lines=True)

with steps_area:
    left, right = st.columns([3, 2])
    with left:
        st.subheader("Step by step")
        rows = [
            {
                "step": s.index + 1,
                "chosen": s.token,
                "p(chosen)": round(s.prob, 3),
                "top-5 candidates": "   ".join(f"{c.token} {c.prob:.2f}" for c in s.top),
            }
            for s in result.steps
        ]
        st.dataframe(rows, hide_index=True, height=min(420, 36 * len(rows) + 40), width="stretch")
        if result.greedy:
            st.caption(
                "Temperature 0 is greedy: the most likely token is always chosen; "
                "the table shows the model's own probabilities."
            )
    with right:
        st.subheader("One step up close")
        which = (
            1 if len(result.steps) == 1 else st.slider("Step", 1, len(result.steps), len(result.steps), key="step_view")
        )
        ui.show_figure(figures.plot_step_distribution(result.steps[which - 1]))

with attention_area:
    if heatmap_png is None:  # drawn once per generation, then kept with it
        heatmap_png = figures.figure_png(figures.plot_last_step_attention(attention), dpi=HEATMAP_DPI)
        st.session_state["gen_result"] = (*saved[:3], heatmap_png)
        heatmap.image(heatmap_png, width="content")
    with st.expander("Every query of that forward pass (layers x heads)"):
        ui.show_figure(plot_attention_grid(attention.full, attention.tokens if len(attention.tokens) <= 24 else None))
