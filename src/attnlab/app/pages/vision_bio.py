"""Vision and proteins: a digit through a trained ViT, a protein sequence through a trained probe."""

import numpy as np
import streamlit as st

from attnlab.app import figures, protein_probes, ui, vit_digits

ui.setup_page(
    "Vision & proteins",
    "The same attention works on image patches and on amino acids. These views use the models "
    "the vision and protein labs saved in your runs folder.",
)
root = ui.runs_root()
section = st.radio(
    "Show",
    ["Digits through a ViT", "Proteins through a probe"],
    horizontal=True,
    key="vb_section",
    label_visibility="collapsed",
)


@st.cache_resource(show_spinner=False)
def _images(name: str):
    from attnlab.data.images import load_images

    return load_images(name)


if section == "Digits through a ViT":
    entry = ui.pick_checkpoint(
        root, ("vit",), key="vit_checkpoint", label="Trained ViT", empty=ui.checkpoint_commands("vit")
    )
    if entry is None:
        st.stop()
    model = data = None
    with ui.friendly():
        model, _ = ui.load_checkpoint(root, entry, ("vit",))
        name, note = vit_digits.digit_source(entry.metadata, entry.config)
        with st.spinner(f"loading the {name} digits ..."):
            data = _images(name)
    if model is None or data is None:
        st.stop()
    st.caption(f"Pick one of the {len(data.test_labels):,} {note}.")
    count = len(data.test_labels)

    def _random_digit() -> None:
        st.session_state["vit_index"] = int(np.random.default_rng().integers(count))

    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    index = c1.slider("Test digit", 0, count - 1, 0, key="vit_index")
    c2.button("Random digit", icon=":material/casino:", on_click=_random_digit, key="vit_random")
    image, label = data.test_images[index], int(data.test_labels[index])
    classes = list(entry.metadata.get("class_names") or data.class_names)
    prediction = None
    with ui.friendly():
        prediction = vit_digits.vit_predict(model, entry.metadata, image, data.mean, data.std)
    if prediction is None:
        st.stop()
    verdict = ":green[right]" if prediction.predicted == label else ":red[wrong]"
    st.subheader(
        f"Digit #{index}: label {classes[label]}, the ViT says {classes[prediction.predicted]} "
        f"({100 * prediction.probs.max():.0f}%) {verdict}"
    )
    left, right = st.columns([3, 2])
    with left:
        ui.show_figure(
            figures.plot_digit_attention(
                image[0],
                {"attention rollout": prediction.rollout, "last layer, CLS row": prediction.last_layer},
            )
        )
        st.caption(
            "Attention rollout (Abnar & Zuidema 2020) follows the attention through every layer and the "
            "residual connections; the last layer shows only the CLS token's own row. Brighter = more."
        )
    with right:
        ui.show_figure(
            figures.plot_class_probabilities(
                prediction.probs, classes, true_class=label, title="Class probabilities (true class outlined)"
            )
        )
else:
    probes = protein_probes.find_probes(root, pretrained=True)
    if not probes:
        st.info(
            f"No trained probe in `{root}` yet. The protein lab saves one with `Probe.save(folder)` "
            f"(`attnlab.bio.probes`); save it inside the runs folder, e.g. `{root}/amp-probe`. "
            "With the `attnlab probe` command, pass `--out` inside the runs folder. The app computes the "
            "composition and one-hot control features itself.",
            icon=":material/folder_open:",
        )
        st.code(
            "from attnlab.bio.controls import composition\n"
            "from attnlab.bio.data import LabelEncoder, assign_splits, load_amp\n"
            "from attnlab.bio.probes import fit_probe\n"
            "ds = assign_splits(load_amp(), seed=0)\n"
            "enc = LabelEncoder.fit(ds.labels, ds.task)\n"
            "tr, va = ds.split('train'), ds.split('valid')\n"
            "probe = fit_probe('mlp', composition(tr.sequences), enc.transform(tr.labels),\n"
            "                  composition(va.sequences), enc.transform(va.labels), ds.task)\n"
            f"probe.save('{root}/amp-probe')\n"
            f"enc.save('{root}/amp-probe/labels.json')",
            language="python",
        )
        st.stop()
    by_rel = {p.relative: p for p in probes}
    chosen = st.selectbox("Trained probe", list(by_rel), format_func=lambda r: by_rel[r].label(), key="probe_pick")
    entry = by_rel[chosen]
    st.caption(f"Features: {entry.features_note}.")
    sequence = st.text_area(
        "Protein sequence (one-letter code)",
        "GIGKFLHSAKKFGKAFVGEIMNS",
        key="probe_sequence",
        height=100,
        help="Magainin 2, an antimicrobial peptide from frog skin, is the example.",
    )
    result = None
    with ui.friendly():
        result = protein_probes.probe_predict(root, entry, sequence)
    if result is not None:
        st.caption(f"{len(result.residues)} residues")
        if result.probs is not None:
            top = int(result.probs.argmax())
            st.subheader(f"Prediction: {result.class_names[top]} ({100 * result.probs[top]:.0f}%)")
            ui.show_figure(
                figures.plot_class_probabilities(result.probs, result.class_names, title="Probe output"),
                width="content",
            )
        else:
            st.subheader(f"Prediction: {result.value:.3f}")
