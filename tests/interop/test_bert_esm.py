"""BERT, RoBERTa and ESM weights -> our Encoder: hidden states, attentions and MLM logits equal transformers'."""

import pytest
import torch
from torch.testing import assert_close

from attnlab.interop import from_pretrained, from_transformers
from attnlab.models.encoder import Encoder

transformers = pytest.importorskip("transformers")

ATOL = dict(atol=1e-4, rtol=1e-4)


def compare(ours, hf, input_ids, attention_mask, *, logits=True):
    """Hidden states, attentions (and MLM logits) at the real tokens of every row."""
    with torch.no_grad():
        a = ours(input_ids, attention_mask=attention_mask, output_hidden_states=True, output_attentions=True)
        b = hf(input_ids, attention_mask=attention_mask, output_hidden_states=True, output_attentions=True)
    real = attention_mask.bool()
    assert len(a.hidden_states) == len(b.hidden_states) == ours.config.num_layers + 1
    for ha, hb in zip(a.hidden_states, b.hidden_states):
        assert_close(ha[real], hb[real], **ATOL)
    assert len(a.attentions) == len(b.attentions) == ours.config.num_layers
    for row in range(input_ids.size(0)):
        n = int(real[row].sum())
        for wa, wb in zip(a.attentions, b.attentions):
            assert wa.shape == wb.shape
            assert_close(wa[row, :, :n, :n], wb[row, :, :n, :n], **ATOL)
    if logits:
        assert_close(a.logits[real], b.logits[real], **ATOL)


def padded_batch(vocab_low, vocab_high, lengths, cls_id, sep_id, pad_id, seed=0):
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.full((len(lengths), width), pad_id)
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(vocab_low, vocab_high, (n,), generator=g)
        ids[row, 0], ids[row, n - 1] = cls_id, sep_id
        mask[row, :n] = 1
    return ids, mask


def random_bert(**overrides):
    torch.manual_seed(0)
    cfg = dict(
        vocab_size=70,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=40,
        attn_implementation="eager",
    )
    cfg.update(overrides)
    return transformers.BertForMaskedLM(transformers.BertConfig(**cfg)).eval()


def test_bert_masked_lm_parity_with_padding_and_token_types():
    hf = random_bert()
    ours = from_transformers(hf)
    assert isinstance(ours, Encoder) and ours.config.head == "mlm" and ours.config.type_vocab_size == 2
    ids, mask = padded_batch(5, 70, [12, 7, 3], cls_id=2, sep_id=3, pad_id=0)
    compare(ours, hf, ids, mask)
    types = (torch.arange(12) >= 6).long().expand(3, 12)
    with torch.no_grad():
        a = ours(ids, attention_mask=mask, token_type_ids=types).logits
        b = hf(ids, attention_mask=mask, token_type_ids=types).logits
    assert_close(a[mask.bool()], b[mask.bool()], **ATOL)


def test_bert_base_model_imports_without_head():
    torch.manual_seed(1)
    cfg = transformers.BertConfig(
        vocab_size=50,
        hidden_size=24,
        num_hidden_layers=3,
        num_attention_heads=3,
        intermediate_size=48,
        max_position_embeddings=20,
        hidden_act="gelu_new",
        attn_implementation="eager",
    )
    hf = transformers.BertModel(cfg).eval()
    ours = from_transformers(hf)
    assert ours.config.head == "none" and ours.config.activation == "gelu_tanh"
    ids, mask = padded_batch(5, 50, [9, 4], cls_id=1, sep_id=2, pad_id=0)
    compare(ours, hf, ids, mask, logits=False)
    with torch.no_grad():
        assert_close(
            ours.encode(ids, mask)[mask.bool()], hf(ids, attention_mask=mask).last_hidden_state[mask.bool()], **ATOL
        )


def test_roberta_positions_start_after_padding_id():
    torch.manual_seed(2)
    cfg = transformers.RobertaConfig(
        vocab_size=60,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=34,
        pad_token_id=1,
        type_vocab_size=1,
        attn_implementation="eager",
    )
    hf = transformers.RobertaForMaskedLM(cfg).eval()
    ours = from_transformers(hf)
    assert ours.config.max_seq_len == 32  # 34 rows minus the two before pad_token_id + 1
    ids, mask = padded_batch(4, 60, [32, 10], cls_id=0, sep_id=2, pad_id=1)
    compare(ours, hf, ids, mask)


def random_esm(position="rotary", **overrides):
    torch.manual_seed(3)
    cfg = dict(
        vocab_size=33,
        pad_token_id=1,
        mask_token_id=32,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        position_embedding_type=position,
        token_dropout=True,
        emb_layer_norm_before=False,
        layer_norm_eps=1e-5,
        max_position_embeddings=64,
        attn_implementation="eager",
    )
    cfg.update(overrides)
    return transformers.EsmForMaskedLM(transformers.EsmConfig(**cfg)).eval()


def esm_batch():
    ids, mask = padded_batch(4, 29, [14, 9, 5], cls_id=0, sep_id=2, pad_id=1, seed=4)
    ids[0, 3], ids[0, 8], ids[1, 2] = 32, 32, 32  # <mask> tokens exercise token dropout's rescaling
    return ids, mask


def test_esm2_rotary_token_dropout_parity():
    hf = random_esm()
    ours = from_transformers(hf)
    c = ours.config
    assert (c.positional, c.norm_first, c.final_norm, c.embed_norm, c.token_dropout) == (
        "rotary",
        True,
        True,
        False,
        True,
    )
    compare(ours, hf, *esm_batch())


def test_esm2_base_model_without_token_dropout():
    torch.manual_seed(5)
    cfg = transformers.EsmConfig(
        vocab_size=33,
        pad_token_id=1,
        mask_token_id=32,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=48,
        position_embedding_type="rotary",
        token_dropout=False,
        emb_layer_norm_before=False,
        attn_implementation="eager",
    )
    hf = transformers.EsmModel(cfg, add_pooling_layer=False).eval()
    ours = from_transformers(hf)
    assert ours.config.head == "none" and not ours.config.token_dropout
    compare(ours, hf, *esm_batch(), logits=False)


def test_esm1b_learned_positions_and_embedding_norm():
    hf = random_esm(position="absolute", emb_layer_norm_before=True)
    ours = from_transformers(hf)
    assert ours.config.positional == "learned" and ours.config.embed_norm
    compare(ours, hf, *esm_batch())


def test_esm_folder_with_vocab_gets_the_protein_tokenizer(tmp_path):
    from attnlab.bio.tokenizers import ESM2_VOCAB, ProteinTokenizer

    hf = random_esm()
    hf.save_pretrained(tmp_path)
    (tmp_path / "vocab.txt").write_text("\n".join(ESM2_VOCAB) + "\n")
    ours, tokenizer = from_pretrained(tmp_path)
    assert isinstance(tokenizer, ProteinTokenizer)
    hf_tokenizer = transformers.EsmTokenizer(str(tmp_path / "vocab.txt"))
    sequence = "MKTAYIAKQRQISFVKSHFSRQ"
    ids = tokenizer.encode_with_specials(sequence)
    assert ids == hf_tokenizer(sequence)["input_ids"]
    x = torch.tensor([ids])
    with torch.no_grad():
        assert_close(ours(x).logits, hf(x).logits, **ATOL)


def test_bert_folder_with_tokenizer(tiny_bert_folder):
    hf = transformers.BertForMaskedLM.from_pretrained(tiny_bert_folder, attn_implementation="eager").eval()
    ours, tokenizer = from_pretrained(tiny_bert_folder)
    assert tokenizer.mask_id == 4 and ours.config.mask_token_id == 4
    hf_tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(tiny_bert_folder / "tokenizer.json"), pad_token="[PAD]"
    )
    text = "The cats sat on a fast mat."
    assert tokenizer.encode_with_specials(text) == hf_tokenizer(text)["input_ids"]
    batch = hf_tokenizer([text, "a dog ran"], padding=True, return_tensors="pt")
    compare(ours, hf, batch["input_ids"], batch["attention_mask"])
