"""Scale & transfer page: the figures and tables of finished scaling and transfer studies (`attnlab.app.studies`)."""

import streamlit as st

from attnlab.app import studies, ui

ui.setup_page(
    "Scale & transfer",
    "The studies of `attnlab scale` (a grid of GPT sizes x token budgets and the scaling law fitted to it) and "
    "`attnlab transfer` (pretrain, then fine-tune, against training from scratch), read from the runs folder.",
)
root = ui.runs_root()
commands = (
    f"Run one in a terminal: `attnlab scale --out {root}/scale-quick --quick` or "
    f"`attnlab transfer --out {root}/transfer-quick --quick` (seconds each; without `--quick`, about ten minutes), "
    "or work through notebook 07."
)
if not root.is_dir():
    st.info(f"The runs folder `{root}` does not exist yet. {commands}", icon=":material/folder_open:")
    st.stop()
entries = studies.find_studies(root)
if not entries:
    st.info(f"No scaling or transfer study in `{root}` yet. {commands}", icon=":material/folder_open:")
    st.stop()

by_rel = {e.relative: e for e in entries}
KEY = "scale_study"
if KEY in st.session_state and st.session_state[KEY] not in by_rel:
    del st.session_state[KEY]  # the folder disappeared since the last run
chosen = st.selectbox("Study", list(by_rel), key=KEY, format_func=lambda rel: by_rel[rel].label())

view = None
with ui.friendly():
    view = studies.load_study(root, chosen)
if view is None:
    st.stop()

st.subheader(f"{studies.KINDS[view.kind].capitalize()}: {view.relative}")
st.caption(view.summary)
columns = st.columns(len(view.headline))
for column, (label, value) in zip(columns, view.headline):
    column.metric(label, value)
for note in view.notes:
    st.caption(note[:1].upper() + note[1:] + ".")

tabs = st.tabs(["Figures", "Report", "Runs"])
with tabs[0]:
    for figure in view.figures:
        caption = figure.caption + (
            " (drawn again from the tables: the study's PNG is missing or damaged)" if figure.redrawn else ""
        )
        st.image(figure.png, caption=caption, width="stretch")
with tabs[1]:
    if view.report:
        st.markdown(view.report)
    else:
        st.caption("This study has no report.md; the tables are under Runs.")
with tabs[2]:
    if view.kind == "transfer":
        st.caption("gains.csv: one row a target size (losses in nats per character; gain = scratch minus fine-tuned).")
        st.dataframe(view.table, hide_index=True)
        st.caption("runs.csv: one row a run.")
    else:
        st.caption("runs.csv: one row a run (params N non-embedding, tokens D, final validation loss).")
    st.dataframe(view.runs, hide_index=True)
