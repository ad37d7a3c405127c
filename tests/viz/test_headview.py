"""The interactive head view: one self-contained HTML file whose embedded data are the
model's attention weights; optionally driven in a real headless Chromium."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import torch

from attnlab.errors import ConfigError
from attnlab.models.registry import load_model
from attnlab.viz.headview import head_view_data, head_view_html, read_head_view_data, write_head_view
from attnlab.viz.models import attention_for_text


def assert_self_contained(html: str) -> None:
    assert not re.search(r"https?://", html), "the page must not reference the network"
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.I), "no external scripts"
    assert not re.search(r"<link\b", html, re.I), "no external stylesheets"
    assert not re.search(r"@import|url\(", html), "no CSS imports or fetched resources"
    assert not re.search(r"\bfetch\(|XMLHttpRequest|import\(", html), "no network calls from the script"
    assert html.count("<script") == 2  # the JSON data and the inline program


def test_head_view_embeds_the_models_attentions(gpt_checkpoint, tmp_path):
    model, tokenizer = load_model(gpt_checkpoint)
    text = "the lazy dog"
    tokens, weights = attention_for_text(model, tokenizer, text)
    path = write_head_view(weights, tokens, tmp_path / "view.html")
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "</html>" in html
    assert_self_contained(html)
    data = read_head_view_data(path)
    # the reference: the model's own forward pass, computed here
    ids = torch.tensor([tokenizer.encode(text)])
    with torch.no_grad():
        expected = torch.stack([a[0] for a in model(ids, output_attentions=True).attentions]).numpy()  # (L, H, T, T)
    np.testing.assert_allclose(np.array(data["attentions"]), expected, atol=5e-6)
    assert data["tokens"] == list(text) == data["key_tokens"]
    assert (data["num_layers"], data["num_heads"]) == expected.shape[:2]
    assert data["format"] == "attnlab-head-view"


def test_tokens_and_titles_cannot_break_out_of_the_page():
    weights = np.full((1, 1, 3, 3), 1 / 3)
    tokens = ["</script><script>alert(1)</script>", "<b>", "&amp;"]
    html = head_view_html(weights, tokens, title="<i>title</i>", subtitle="a & b")
    assert "<script>alert" not in html and "<i>title</i>" not in html and "&lt;i&gt;title" in html
    assert_self_contained(html)
    assert read_head_view_data(html)["tokens"] == tokens  # still exact after the escaping


def test_cross_attention_labels_and_rounding():
    weights = np.random.default_rng(0).dirichlet(np.ones(4), size=(2, 3, 2))  # (L=2, H=3, T=2, S=4)
    data = head_view_data(weights, ["a", "b"], key_tokens=["w", "x", "y", "z"], decimals=3)
    np.testing.assert_allclose(np.array(data["attentions"]), weights, atol=5e-4)
    assert data["key_tokens"] == ["w", "x", "y", "z"]


def test_head_view_bad_inputs(tmp_path):
    weights = np.full((1, 1, 2, 2), 0.5)
    with pytest.raises(ConfigError, match=r"\.html"):
        write_head_view(weights, ["a", "b"], tmp_path / "view.png")
    with pytest.raises(ConfigError, match="labels"):
        head_view_data(weights, ["a"])
    with pytest.raises(ConfigError, match="NaN"):
        head_view_data(np.full((1, 1, 2, 2), np.nan), ["a", "b"])
    with pytest.raises(ConfigError, match="no attnlab head-view data"):
        read_head_view_data("<html><body>nothing</body></html>")


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.mark.browser
def test_head_view_runs_offline_in_chromium(tmp_path):
    """Open the page in headless Chromium: no script errors, no requests, hover shows the weights."""
    playwright = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    weights = np.zeros((2, 2, 3, 3))
    weights[..., 0] = 1.0  # every query attends to the first token
    weights[1, 1] = np.eye(3)  # except layer 1, head 1: each token to itself
    path = write_head_view(weights, ["one", "two", "three"], tmp_path / "view.html", title="test view")
    errors, requests = [], []
    with playwright.sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        except Exception as e:  # no browser installed (playwright install chromium, or apt-get install chromium)
            pytest.skip(f"no headless Chromium available: {str(e).splitlines()[0]}")
        page = browser.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url) if not r.url.startswith("file:") else None)
        page.goto(path.resolve().as_uri())
        assert page.locator("#layer option").count() == 2
        assert page.locator("#head option").count() == 2 + 2  # mean, all heads, head 0, head 1
        page.select_option("#layer", "1")
        page.select_option("#head", "1")
        page.hover("#queries .token >> nth=2")
        weights_shown = page.locator("#keys .token .weight").all_text_contents()
        browser.close()
    assert errors == [] and requests == []
    assert weights_shown == ["0.00", "0.00", "1.00"]
