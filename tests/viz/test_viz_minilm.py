"""Embedding and attention figures on the real all-MiniLM-L6-v2, checked against
sentence-transformers and Hugging Face transformers run on the same folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlab.errors import DataError, TokenizerError
from attnlab.viz import embeddings as VE
from attnlab.viz.models import attention_for_text

pytestmark = pytest.mark.needs_minilm

SENTENCES = ["Computational Modeling and Data Analytics", "Academy of Data Science", "Medieval French poetry"]


@pytest.fixture(scope="module")
def hf_minilm(minilm_path):
    """The reference: Hugging Face's BertModel and tokenizer on the same folder (eager attention)."""
    transformers = pytest.importorskip("transformers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(minilm_path))
    model = transformers.AutoModel.from_pretrained(str(minilm_path), attn_implementation="eager").eval()
    return model, tokenizer


@pytest.mark.slow  # importing and loading sentence-transformers takes ~10 s on 2 cores
def test_sentence_cosine_matrix_equals_sentence_transformers(minilm_encoder, minilm_path, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(str(minilm_path), device="cpu")
    vectors = reference.encode(SENTENCES, convert_to_tensor=True)
    expected = st.util.cos_sim(vectors, vectors).numpy()
    sim = VE.sentence_similarity(SENTENCES, minilm_encoder)
    np.testing.assert_allclose(sim, expected, atol=2e-5)
    fig = VE.plot_sentence_similarity(SENTENCES, encoder=minilm_encoder)
    ax = [a for a in fig.axes if a.get_label() != "<colorbar>"][0]
    np.testing.assert_allclose(ax.images[0].get_array(), expected, atol=2e-5)  # the figure shows those numbers
    assert ax.get_yticklabels()[0].get_text().replace("\n", " ") == "Computational Modeling and Data Analytics (#1)"
    path = VE.plot_sentence_similarity(SENTENCES, tmp_path / "s.png", encoder=minilm_encoder, dpi=50)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_attention_equals_hugging_face(minilm_encoder, hf_minilm):
    model, tokenizer = hf_minilm
    text = "The fashion model walked down the runway."
    tokens, weights = attention_for_text(minilm_encoder.model, minilm_encoder.tokenizer, text)
    encoded = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        expected = torch.stack([a[0] for a in model(**encoded, output_attentions=True).attentions]).numpy()
    assert tokens == tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    np.testing.assert_allclose(weights, expected, atol=2e-5)


def test_contextual_similarity_equals_hidden_states_of_hugging_face(minilm_encoder, hf_minilm):
    model, tokenizer = hf_minilm
    contexts = ["machine learning model", "fashion model", "a model on the catwalk"]
    sims = VE.contextual_similarity("model", contexts, minilm_encoder)
    np.testing.assert_allclose(sims["static"], np.ones((3, 3)), atol=1e-6)  # one table row, whatever the context
    word_id = tokenizer.convert_tokens_to_ids("model")
    vectors = []
    for text in contexts:
        encoded = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            state = model(**encoded).last_hidden_state[0]
        vectors.append(state[encoded["input_ids"][0].tolist().index(word_id)])
    vectors = torch.stack(vectors)
    expected = torch.nn.functional.cosine_similarity(vectors[:, None], vectors[None], dim=-1).numpy()
    np.testing.assert_allclose(sims["contextual"], expected, atol=2e-5)
    assert expected[1, 2] > expected[0, 1]  # the two fashion senses are closer than ML vs fashion
    with pytest.raises(DataError, match="does not occur"):
        VE.contextual_similarity("bank", ["the river bank", "a model"], minilm_encoder)


def test_neighbours_and_analogy_on_the_embedding_table(minilm_encoder, hf_minilm, tmp_path):
    model, tokenizer = hf_minilm
    table = model.get_input_embeddings().weight.detach().double().numpy()
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)
    ids = {w: tokenizer.convert_tokens_to_ids(w) for w in ("king", "man", "woman")}
    query = unit[ids["king"]] - unit[ids["man"]] + unit[ids["woman"]]
    scores = unit @ (query / np.linalg.norm(query))
    vocab = tokenizer.convert_ids_to_tokens(list(range(len(table))))
    ranked = [
        (vocab[i], scores[i])
        for i in np.argsort(-scores)
        if i not in ids.values() and not vocab[i].startswith(("[", "##"))
    ][:5]
    found = VE.analogy("king", "man", "woman", 5, minilm_encoder)
    assert [w for w, _ in found] == [w for w, _ in ranked]
    np.testing.assert_allclose([s for _, s in found], [s for _, s in ranked], atol=1e-5)
    assert found[0][0] == "queen"
    neighbours = VE.nearest_neighbours("king", 3, minilm_encoder)
    assert "king" not in [w for w, _ in neighbours] and neighbours[0][1] >= neighbours[-1][1]
    np.testing.assert_allclose(
        VE.word_similarity(["king", "queen"], minilm_encoder)[0, 1],
        unit[ids["king"]] @ unit[tokenizer.convert_tokens_to_ids("queen")],
        atol=1e-6,
    )
    with pytest.raises(TokenizerError, match="not a single token"):
        VE.analogy("kingz", "man", "woman", encoder=minilm_encoder)
    assert VE.plot_analogy(out=tmp_path / "a.png", encoder=minilm_encoder, dpi=50).is_file()
    assert VE.plot_neighbours(["king"], tmp_path / "n.svg", k=4, encoder=minilm_encoder).is_file()
    assert VE.plot_word_similarity(
        ["king", "queen", "man"], tmp_path / "w.png", encoder=minilm_encoder, dpi=50
    ).is_file()
    assert VE.plot_contextual_similarity(out=tmp_path / "c.png", encoder=minilm_encoder, dpi=50).is_file()
