"""Entry script of the attnlab app: `streamlit run main.py` (what `attnlab app` runs).

It sets up the page and the navigation between the pages in `pages/`; each page is a
thin script on top of the app modules (`runs_folder`, `generation`, ...) and the library.
"""

from pathlib import Path

import streamlit as st

from attnlab.app import ui

HERE = Path(__file__).resolve().parent
PAGES = HERE / "pages"

st.set_page_config(
    page_title="attnlab", page_icon=":material/center_focus_strong:", layout="wide", initial_sidebar_state="expanded"
)

navigation = st.navigation(
    [
        st.Page(PAGES / "generate.py", title="Generate", icon=":material/edit_note:", default=True),
        st.Page(PAGES / "attention.py", title="Attention", icon=":material/visibility:"),
        st.Page(PAGES / "inside.py", title="Inside the block", icon=":material/biotech:"),
        st.Page(PAGES / "experiments.py", title="Experiments", icon=":material/experiment:"),
        st.Page(PAGES / "scale.py", title="Scale & transfer", icon=":material/trending_down:"),
        st.Page(PAGES / "positions.py", title="Positions & embeddings", icon=":material/explore:"),
        st.Page(PAGES / "vision_bio.py", title="Vision & proteins", icon=":material/science:"),
    ]
)
ui.sidebar(ui.runs_root())
navigation.run()
