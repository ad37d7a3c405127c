"""`attnlab convert` and `attnlab embed` end to end, `from_pretrained`, and their bad inputs."""

import json
import shutil

import pytest
import torch
from torch.testing import assert_close

from attnlab.cli import main
from attnlab.errors import CheckpointError, DownloadError
from attnlab.interop import embed_texts, from_pretrained
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.models.registry import load_model

transformers = pytest.importorskip("transformers")


def one_line_error(capsys, fragment: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("attnlab: error:") and "\n" not in err, err
    assert fragment in err, err
    return err


def test_convert_bert_folder_to_checkpoint(tiny_bert_folder, tmp_path, capsys):
    out = tmp_path / "ck"
    assert main(["convert", "--from-hf", str(tiny_bert_folder), "--out", str(out)]) == 0
    assert "BertForMaskedLM" in capsys.readouterr().out
    model, tokenizer = load_model(out, expect="encoder")
    meta = json.loads((out / "config.json").read_text())
    assert meta["hf_architecture"] == "BertForMaskedLM" and meta["converted_from"] == str(tiny_bert_folder)
    hf = transformers.BertForMaskedLM.from_pretrained(tiny_bert_folder).eval()
    ids = torch.tensor([tokenizer.encode_with_specials("the cat sat on the mat")])
    with torch.no_grad():
        assert_close(model(ids).logits, hf(ids).logits, atol=1e-4, rtol=1e-4)
    # converting again into the same folder needs --force
    capsys.readouterr()
    assert main(["convert", "--from-hf", str(tiny_bert_folder), "--out", str(out)]) == 2
    one_line_error(capsys, "--force")
    assert main(["convert", "--from-hf", str(tiny_bert_folder), "--out", str(out), "--force"]) == 0


def test_convert_gpt2_folder_then_generate(tiny_gpt2_folder, tmp_path):
    out = tmp_path / "gpt"
    assert main(["convert", "--from-hf", str(tiny_gpt2_folder), "--out", str(out)]) == 0
    model, _ = load_model(out, expect="gpt")
    hf = transformers.GPT2LMHeadModel.from_pretrained(tiny_gpt2_folder).eval()
    x = torch.randint(0, 61, (1, 7))
    with torch.no_grad():
        assert_close(model(x).logits, hf(x).logits, atol=1e-4, rtol=1e-4)


def test_convert_gpt_checkpoint_to_hf_folder(tmp_path, capsys):
    from attnlab.generate import generate
    from attnlab.tokenizers import CharTokenizer

    tokenizer = CharTokenizer.train("hello attention world\n")
    torch.manual_seed(0)
    gpt = GPT(GPTConfig.from_name("nano", vocab_size=tokenizer.vocab_size)).eval()
    gpt.save(tmp_path / "ck", tokenizer=tokenizer)
    assert main(["convert", "--to-hf", str(tmp_path / "ck"), "--out", str(tmp_path / "hf")]) == 0
    assert "Hugging Face folder" in (said := capsys.readouterr().out) and "GPT2LMHeadModel.from_pretrained" in said
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    prompt = torch.tensor([hf_tokenizer("hello")["input_ids"]])
    theirs = hf.generate(
        prompt, max_new_tokens=12, do_sample=False, attention_mask=torch.ones_like(prompt), pad_token_id=0
    )
    assert theirs.tolist() == generate(gpt, prompt, max_new_tokens=12, temperature=0).tolist()
    # the folder already holds a model: refuse without --force
    capsys.readouterr()
    assert main(["convert", "--to-hf", str(tmp_path / "ck"), "--out", str(tmp_path / "hf")]) == 2
    one_line_error(capsys, "already holds a model")


def test_convert_bad_inputs(tmp_path, tiny_bert_folder, capsys):
    not_model = tmp_path / "notes"
    not_model.mkdir()
    (not_model / "readme.txt").write_text("hi")
    assert main(["convert", "--from-hf", str(not_model), "--out", str(tmp_path / "o1")]) == 2
    one_line_error(capsys, "no config.json")

    t5 = tmp_path / "t5"
    t5.mkdir()
    (t5 / "config.json").write_text(json.dumps({"model_type": "t5", "architectures": ["T5ForConditionalGeneration"]}))
    assert main(["convert", "--from-hf", str(t5), "--out", str(tmp_path / "o2")]) == 2
    one_line_error(capsys, "'t5' is not supported")

    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    shutil.copy(tiny_bert_folder / "config.json", no_weights / "config.json")
    assert main(["convert", "--from-hf", str(no_weights), "--out", str(tmp_path / "o3")]) == 2
    one_line_error(capsys, "no weights")

    assert main(["convert", "--from-hf", str(tmp_path / "missing"), "--out", str(tmp_path / "o4")]) == 2
    one_line_error(capsys, "does not exist")

    assert (
        main(["convert", "--from-hf", "someone/some-model", "--out", str(tmp_path / "o5")]) == 2
    )  # HF_HUB_OFFLINE=1 in tests
    one_line_error(capsys, "hub access is switched off")

    main(["convert", "--from-hf", str(tiny_bert_folder), "--out", str(tmp_path / "enc")])
    capsys.readouterr()
    assert main(["convert", "--to-hf", str(tmp_path / "enc"), "--out", str(tmp_path / "o6")]) == 2
    one_line_error(capsys, "only GPT checkpoints")
    assert main(["convert", "--to-hf", str(tiny_bert_folder), "--out", str(tmp_path / "o7")]) == 2
    one_line_error(capsys, "Hugging Face model folder")


def test_embed_hf_folder_and_checkpoint(tiny_bert_folder, tmp_path, capsys):
    texts = ["the cat sat", "a dog ran fast"]
    assert (
        main(["embed", "--checkpoint", str(tiny_bert_folder), "--text", texts[0], "--text", texts[1], "--normalize"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["dim"] == 32 and result["texts"] == texts and result["pool"] == "mean" and result["normalize"]
    model, tokenizer = from_pretrained(tiny_bert_folder)
    expected = embed_texts(model, tokenizer, texts, normalize=True)
    assert_close(torch.tensor(result["vectors"]), expected, atol=1e-6, rtol=1e-6)
    # the same through a converted checkpoint, with CLS pooling
    main(["convert", "--from-hf", str(tiny_bert_folder), "--out", str(tmp_path / "ck")])
    capsys.readouterr()
    assert main(["embed", "--checkpoint", str(tmp_path / "ck"), "--text", texts[0], "--pool", "cls"]) == 0
    cls = json.loads(capsys.readouterr().out)["vectors"]
    assert_close(torch.tensor(cls), embed_texts(model, tokenizer, texts[:1], pool="cls"), atol=1e-6, rtol=1e-6)


def test_embed_bad_inputs(tiny_bert_folder, tmp_path, capsys):
    long_text = " ".join(["cat"] * 60)  # 62 tokens with [CLS]/[SEP]; the context is 40
    assert main(["embed", "--checkpoint", str(tiny_bert_folder), "--text", long_text]) == 2
    one_line_error(capsys, "62 tokens long")
    assert main(["embed", "--checkpoint", str(tiny_bert_folder), "--text", long_text, "--truncate"]) == 0
    assert json.loads(capsys.readouterr().out)["dim"] == 32

    GPT(GPTConfig.from_name("nano")).save(tmp_path / "gpt")
    assert main(["embed", "--checkpoint", str(tmp_path / "gpt"), "--text", "hi"]) == 2
    one_line_error(capsys, "needs an encoder")
    assert main(["embed", "--checkpoint", str(tmp_path / "nothing"), "--text", "hi"]) == 2
    one_line_error(capsys, "does not exist")


@pytest.mark.needs_minilm
def test_embed_minilm_from_the_command_line(minilm_path, minilm, capsys):
    assert main(["embed", "--checkpoint", str(minilm_path), "--text", "A sentence to embed.", "--normalize"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dim"] == 384
    expected = embed_texts(*minilm, ["A sentence to embed."], normalize=True)
    assert_close(torch.tensor(result["vectors"]), expected, atol=1e-6, rtol=1e-6)


def test_from_pretrained_reads_pickled_weights_safely(tiny_bert_folder, tmp_path):
    folder = tmp_path / "bin"
    shutil.copytree(tiny_bert_folder, folder)
    from safetensors.torch import load_file

    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    from_bin, _ = from_pretrained(folder)
    from_safetensors, _ = from_pretrained(tiny_bert_folder)
    x = torch.randint(5, 40, (1, 6))
    assert_close(from_bin(x).logits, from_safetensors(x).logits)


def test_from_pretrained_errors(tiny_bert_folder, tmp_path):
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    shutil.copytree(tiny_bert_folder, broken)
    state = load_file(str(broken / "model.safetensors"))
    missing = next(k for k in state if "intermediate.dense.weight" in k)
    del state[missing]
    save_file(state, str(broken / "model.safetensors"))
    with pytest.raises(CheckpointError, match="intermediate.dense.weight"):
        from_pretrained(broken)
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE"):
        from_pretrained("sentence-transformers/all-MiniLM-L6-v2")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(CheckpointError, match="is a file"):
        from_pretrained(tmp_path / "file.txt")


def test_from_pretrained_loads_attnlab_checkpoints(tmp_path):
    torch.manual_seed(1)
    gpt = GPT(GPTConfig.from_name("nano", vocab_size=20)).eval()
    gpt.save(tmp_path / "ck")
    loaded, tokenizer = from_pretrained(tmp_path / "ck")
    x = torch.randint(0, 20, (1, 5))
    assert tokenizer is None and isinstance(loaded, GPT)
    assert_close(loaded(x).logits, gpt(x).logits)
