"""make_embedder: controls, attnlab checkpoints, the random control, ESM-2 folders, windows, layers, cache keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlab.bio.cache import EmbeddingCache
from attnlab.bio.controls import CompositionEmbedder, OneHotEmbedder
from attnlab.bio.embedder_base import compute_embeddings, module_fingerprint
from attnlab.bio.embedders import EncoderEmbedder, embedder_kind, make_embedder
from attnlab.bio.tokenizers import ESM2_VOCAB, ProteinTokenizer
from attnlab.errors import CheckpointError, ConfigError, DataError
from attnlab.models.encoder import Encoder

from .conftest import random_sequences, tiny_protein_config

SHORT = ["MKTAYW", "G", "LLAGCCKRE", "MK"]


def direct_states(model: Encoder, sequence: str, layer: int | None = None) -> np.ndarray:
    """Residue states of one sequence run on its own (no batching, no windows)."""
    tok = ProteinTokenizer()
    ids = torch.tensor([tok.encode_with_specials(sequence)])
    with torch.no_grad():
        out = model(ids, output_hidden_states=True)
    states = out.hidden_states[-1 if layer is None else layer]
    return states[0, 1:-1].numpy()


def test_controls_by_name():
    assert isinstance(make_embedder("onehot"), OneHotEmbedder)
    assert isinstance(make_embedder("composition"), CompositionEmbedder)
    assert embedder_kind(make_embedder("onehot")) == "onehot"


@pytest.mark.parametrize(
    "spec, pool, words",
    [
        ("word2vec", None, "unknown embedder 'word2vec'"),
        ("", None, "empty"),
        ("composition", "max", "pool 'max' is not supported by the composition embedder; choose one of: mean"),
        ("onehot", "cls", "choose one of: mean, max, attn"),
    ],
)
def test_bad_names_and_pools(spec, pool, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        make_embedder(spec, pool=pool)


def test_checkpoint_embedder_equals_the_model_run_directly(tiny_protein_checkpoint):
    emb = make_embedder(tiny_protein_checkpoint, pool="mean", progress=False, batch_size=3)
    assert isinstance(emb, EncoderEmbedder) and emb.embedding_dim == 16 and embedder_kind(emb) == "model"
    model = Encoder.from_checkpoint(tiny_protein_checkpoint)
    residues = emb.embed(SHORT, "none")
    for seq, got in zip(SHORT, residues):
        np.testing.assert_allclose(got, direct_states(model, seq), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(emb.embed(SHORT, "mean"), np.stack([r.mean(0) for r in residues]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(emb.embed(SHORT, "max"), np.stack([r.max(0) for r in residues]), rtol=1e-5, atol=1e-6)
    tok = ProteinTokenizer()
    with torch.no_grad():
        cls = [model.encode(torch.tensor([tok.encode_with_specials(s)]))[0, 0].numpy() for s in SHORT]
    np.testing.assert_allclose(emb.embed(SHORT, "cls"), np.stack(cls), rtol=1e-5, atol=1e-5)


def test_layers(tiny_protein_checkpoint):
    model = Encoder.from_checkpoint(tiny_protein_checkpoint)
    for layer in (0, 1):
        emb = make_embedder(tiny_protein_checkpoint, layer=layer, progress=False)
        np.testing.assert_allclose(
            emb.embed(["MKTAYW"], "none")[0], direct_states(model, "MKTAYW", layer), rtol=1e-5, atol=1e-5
        )
    last = make_embedder(tiny_protein_checkpoint, layer=-1, progress=False)
    assert last.layer is None and last.identity == make_embedder(tiny_protein_checkpoint, progress=False).identity
    assert make_embedder(tiny_protein_checkpoint, layer=0, progress=False).identity != last.identity
    with pytest.raises(ConfigError, match="layer 5 does not exist"):
        make_embedder(tiny_protein_checkpoint, layer=5)


def test_long_sequences_are_windowed_one_vector_per_residue(tiny_protein_checkpoint):
    emb = make_embedder(tiny_protein_checkpoint, progress=False)  # 14 residues per window, step 7
    model = emb.model
    seq = random_sequences(1, 33, 33, seed=5)[0]
    assert emb.windows(33) == [(0, 14), (7, 21), (14, 28), (19, 33)]
    got = emb.embed([seq], "none")[0]
    assert got.shape == (33, 16)
    # The centre rule by hand: centres 6.5, 13.5, 20.5, 25.5; ties (residues 10, 17, 23) go to the earlier window.
    owner = [0] * 11 + [1] * 7 + [2] * 6 + [3] * 9
    windows = emb.windows(33)
    expected = np.stack(
        [direct_states(model, seq[s:e])[i - s] for i, (s, e) in ((i, windows[w]) for i, w in enumerate(owner))]
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # Pooled vectors come from the stitched residues; cls is the mean of the windows' <cls> states.
    np.testing.assert_allclose(emb.embed([seq], "mean")[0], expected.mean(0), rtol=1e-5, atol=1e-6)
    tok = ProteinTokenizer()
    with torch.no_grad():
        cls = [model.encode(torch.tensor([tok.encode_with_specials(seq[s:e])]))[0, 0].numpy() for s, e in windows]
    np.testing.assert_allclose(emb.embed([seq], "cls")[0], np.mean(cls, axis=0), rtol=1e-5, atol=1e-5)


def test_error_policy_names_the_sequence(tiny_protein_checkpoint):
    emb = make_embedder(tiny_protein_checkpoint, long_sequences="error", progress=False)
    emb.embed(["A" * 14], "mean")  # exactly the context: fine
    with pytest.raises(DataError, match="sequence 2 has 15 residues but the model's context holds 14"):
        emb.embed(["MK", "A" * 15], "mean")
    with pytest.raises(ConfigError, match="window_overlap"):
        make_embedder(tiny_protein_checkpoint, window_overlap=14)


def test_random_control_is_seeded_and_differs_from_the_trained_model(tiny_protein_checkpoint):
    trained = make_embedder(tiny_protein_checkpoint, progress=False)
    twin = make_embedder(f"random:{tiny_protein_checkpoint}", progress=False)
    again = make_embedder("random", random_like=tiny_protein_checkpoint, progress=False)
    other_seed = make_embedder(f"random:{tiny_protein_checkpoint}", random_seed=1, progress=False)
    assert embedder_kind(twin) == "random" and embedder_kind(trained) == "model"
    # Same architecture (config), other weights; same seed = same weights.
    assert twin.model.config == trained.model.config
    assert twin.fingerprint == again.fingerprint != trained.fingerprint
    assert other_seed.fingerprint != twin.fingerprint
    assert len({trained.identity, twin.identity, other_seed.identity}) == 3
    a, b = trained.embed(SHORT, "mean"), twin.embed(SHORT, "mean")
    assert not np.allclose(a, b, atol=1e-3)
    np.testing.assert_array_equal(b, again.embed(SHORT, "mean"))
    # The random control leaves the global RNG alone.
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make_embedder("random", random_like=tiny_protein_checkpoint, progress=False)
    torch.testing.assert_close(torch.rand(3), expected)


def test_random_preset_default_is_protein_small():
    emb = make_embedder("random", progress=False)
    assert emb.model.config.embed_dim == 128 and emb.model.config.num_layers == 4
    with pytest.raises(ConfigError, match="not a protein model"):
        make_embedder("random:small")
    with pytest.raises(ConfigError, match="not an encoder preset"):
        make_embedder("random:nonsense")


def test_not_a_protein_encoder(tmp_path):
    from attnlab.models.gpt import GPT, GPTConfig
    from attnlab.models.registry import save_model
    from attnlab.tokenizers.char import CharTokenizer

    gpt_dir = tmp_path / "gpt"
    save_model(GPT(GPTConfig.from_name("nano", vocab_size=10)), gpt_dir)
    with pytest.raises(CheckpointError, match="holds a 'gpt' model, not a protein encoder"):
        make_embedder(gpt_dir)
    text_dir = tmp_path / "text-encoder"
    text_tokenizer = CharTokenizer.train("abcdefghijklmnopqrstuvwxyz 012345")  # 33 ids, like the embedding table
    Encoder(tiny_protein_config()).save(text_dir, tokenizer=text_tokenizer)
    with pytest.raises(CheckpointError, match="not a protein language model"):
        make_embedder(text_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="neither an attnlab checkpoint nor a Hugging Face model folder"):
        make_embedder(tmp_path / "empty")


def test_esm2_hugging_face_folder(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(3)
    config = transformers.EsmConfig(
        vocab_size=33,
        pad_token_id=1,
        mask_token_id=32,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        position_embedding_type="rotary",
        token_dropout=True,
        emb_layer_norm_before=False,
        layer_norm_eps=1e-5,
        max_position_embeddings=40,
        attn_implementation="eager",
    )
    hf = transformers.EsmForMaskedLM(config).eval()
    hf.save_pretrained(tmp_path)
    (tmp_path / "vocab.txt").write_text("\n".join(ESM2_VOCAB) + "\n")
    emb = make_embedder(tmp_path, pool="cls", progress=False)
    assert emb.embedding_dim == 32 and emb.span == 38
    seqs = ["MKTAYIAKQRQISFVKSHFSRQ", "GIGKFLHSAKKF"]
    got = emb.embed(seqs, "none")
    tok = ProteinTokenizer()
    for seq, vectors in zip(seqs, got):
        ids = torch.tensor([tok.encode_with_specials(seq)])
        with torch.no_grad():
            reference = hf(ids, output_hidden_states=True).hidden_states[-1][0, 1:-1]
        torch.testing.assert_close(torch.from_numpy(vectors), reference, atol=1e-4, rtol=1e-4)


def test_cache_hits_across_embedder_instances(tiny_protein_checkpoint, tmp_path):
    cache = EmbeddingCache(tmp_path)
    seqs = random_sequences(5, 5, 30, seed=7)
    first = compute_embeddings(make_embedder(tiny_protein_checkpoint, progress=False), seqs, "none", cache=cache)
    again = compute_embeddings(make_embedder(tiny_protein_checkpoint, progress=False), seqs, "none", cache=cache)
    assert (cache.hits, cache.misses) == (1, 1)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    compute_embeddings(make_embedder(f"random:{tiny_protein_checkpoint}", progress=False), seqs, "none", cache=cache)
    compute_embeddings(
        make_embedder(tiny_protein_checkpoint, window_overlap=3, progress=False), seqs, "none", cache=cache
    )
    assert (cache.hits, cache.misses) == (1, 3)  # other weights, other windows: new keys


def test_fingerprint_is_the_modules():
    model = Encoder(tiny_protein_config())
    emb = EncoderEmbedder(model, ProteinTokenizer(), progress=False)
    assert emb.fingerprint == module_fingerprint(model)
    with pytest.raises(ConfigError, match="protein/DNA/RNA tokenizer"):
        from attnlab.tokenizers.char import CharTokenizer

        EncoderEmbedder(model, CharTokenizer.train("abc"))
