"""An interactive "head view" of attention as one self-contained HTML file.

The page shows the tokens twice, queries on the left and keys on the right, with a
line from each query to each key whose opacity is the attention weight. Selectors
pick the layer and the head (or the mean over heads, or every head at once in its
own colour); hovering a token keeps only its lines and writes the weights beside the
other column. The idea follows Vig (2019), "A Multiscale Visualization of Attention
in the Transformer Model" (bertviz); this implementation is written from scratch.

The file works offline: CSS and JavaScript are inline, the weights are embedded as
JSON in a `<script type="application/json">` element, and nothing is fetched from a
network or CDN. `read_head_view_data` parses the embedded data back (tests, app).

Notation: L layers, H heads, T queries, S keys.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.errors import ConfigError
from attnlab.utils import write_text_atomic
from attnlab.viz.attention import attention_array

DATA_FORMAT = "attnlab-head-view"
DATA_VERSION = 1
DATA_ELEMENT_ID = "attnlab-head-view-data"
DEFAULT_DECIMALS = 5  # weights are rounded to this many decimals (file size; 1e-5 is invisible)


def head_view_data(
    attentions: Any,
    tokens: Sequence[str],
    *,
    key_tokens: Sequence[str] | None = None,
    title: str = "",
    subtitle: str = "",
    batch_index: int = 0,
    decimals: int = DEFAULT_DECIMALS,
) -> dict[str, Any]:
    """The JSON-ready description the head view embeds.

    Args:
        attentions: sequence over layers of (B, H, T, S) weights (HF layout) or an (L, H, T, S) array.
        tokens: T query labels (and key labels unless `key_tokens`).
        key_tokens: S key labels (cross-attention).
        title: heading of the page.
        subtitle: a line under the heading (model, text ...).
        batch_index: which batch row to show.
        decimals: rounding of the weights.
    Returns:
        {"format", "version", "title", "subtitle", "tokens", "key_tokens", "num_layers",
         "num_heads", "attentions": nested lists (L, H, T, S)}.
    """
    A = attention_array(attentions, batch_index)  # (L, H, T, S)
    L, H, T, S = A.shape
    tokens = [str(t) for t in tokens]
    keys = [str(t) for t in key_tokens] if key_tokens is not None else list(tokens)
    if len(tokens) != T or len(keys) != S:
        raise ConfigError(f"got {len(tokens)} query and {len(keys)} key labels for attention of shape (T={T}, S={S})")
    if not np.all(np.isfinite(A)):
        raise ConfigError("the attention weights contain NaN or infinite values; they cannot be drawn")
    return {
        "format": DATA_FORMAT,
        "version": DATA_VERSION,
        "title": title or "Attention head view",
        "subtitle": subtitle,
        "tokens": tokens,
        "key_tokens": keys,
        "num_layers": L,
        "num_heads": H,
        "attentions": np.round(A.astype(np.float64), decimals).tolist(),
    }


def _json_for_script(data: dict[str, Any]) -> str:
    """JSON that cannot end its <script> element early ("<" is written as \\u003c)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def head_view_html(
    attentions: Any,
    tokens: Sequence[str],
    *,
    key_tokens: Sequence[str] | None = None,
    title: str = "",
    subtitle: str = "",
    batch_index: int = 0,
    decimals: int = DEFAULT_DECIMALS,
) -> str:
    """The head view as a complete, self-contained HTML document (a string).

    Args: as `head_view_data`.
    Returns:
        HTML text with inline CSS, JavaScript and data; no external references.
    """
    data = head_view_data(
        attentions,
        tokens,
        key_tokens=key_tokens,
        title=title,
        subtitle=subtitle,
        batch_index=batch_index,
        decimals=decimals,
    )
    fields = {
        "TITLE": html.escape(data["title"]),
        "SUBTITLE": html.escape(data["subtitle"]),
        "DATA_ID": DATA_ELEMENT_ID,
        "CSS": _CSS,
        "JS": _JS.replace("__DATA_ID__", DATA_ELEMENT_ID),
        "DATA": _json_for_script(data),
    }
    # one pass over the template, so text inside the fields is never substituted again
    return re.sub(r"__([A-Z_]+)__", lambda m: fields[m.group(1)], _TEMPLATE)


def write_head_view(
    attentions: Any,
    tokens: Sequence[str],
    out: str | os.PathLike,
    *,
    key_tokens: Sequence[str] | None = None,
    title: str = "",
    subtitle: str = "",
    batch_index: int = 0,
    decimals: int = DEFAULT_DECIMALS,
) -> Path:
    """Write the head view to `out` (an .html file) atomically and return the path.

    Raises:
        ConfigError: `out` does not end in .html/.htm, or cannot be written.
    """
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"the head view is a web page: give --out a name ending in .html, not {out.name!r}")
    text = head_view_html(
        attentions,
        tokens,
        key_tokens=key_tokens,
        title=title,
        subtitle=subtitle,
        batch_index=batch_index,
        decimals=decimals,
    )
    try:
        write_text_atomic(out, text)
    except OSError as e:
        raise ConfigError(f"cannot write {out} ({e.strerror or e}); choose a writable path for --out") from e
    return out


_DATA_RE = re.compile(
    r'<script type="application/json" id="' + re.escape(DATA_ELEMENT_ID) + r'">(.*?)</script>', re.DOTALL
)


def read_head_view_data(source: str | os.PathLike) -> dict[str, Any]:
    """Parse the data embedded in a head-view page (a path, or the HTML text itself).

    Returns:
        The dict written by `head_view_data`.
    """
    text = str(source)
    if "<html" not in text[:500]:
        text = Path(source).read_text(encoding="utf-8")
    match = _DATA_RE.search(text)
    if match is None:
        raise ConfigError("no attnlab head-view data found in this page; was it written by write_head_view?")
    return json.loads(match.group(1))


_CSS = """
:root { --ink: #1b1b1b; --muted: #5a5a5a; --hi: #fde68a; --row: 26px; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); margin: 24px; background: #ffffff; }
h1 { font-size: 1.5rem; margin: 0 0 4px 0; }
.subtitle { color: var(--muted); margin: 0 0 16px 0; font-size: 1rem; }
.controls { display: flex; flex-wrap: wrap; gap: 18px; align-items: center; margin-bottom: 14px; font-size: 1rem; }
.controls label { display: flex; gap: 6px; align-items: center; }
select, input { font-size: 1rem; }
.view { display: grid; grid-template-columns: auto 300px auto; align-items: start; gap: 0; }
.column { display: flex; flex-direction: column; }
.column.queries { align-items: flex-end; }
.column.keys { align-items: flex-start; }
.column h2, .spacer { height: 30px; margin: 0; font-size: 0.9rem; color: var(--muted); font-weight: 600; line-height: 30px; }
.token { height: var(--row); line-height: var(--row); padding: 0 8px; border-radius: 4px; cursor: default;
         font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 16px; white-space: pre;
         position: relative; }
.token.active { background: var(--hi); outline: 2px solid #b45309; }
.token .weight { font-size: 12px; color: var(--muted); margin: 0 6px; }
canvas { display: block; margin-top: 30px; }
.legend { display: flex; flex-wrap: wrap; gap: 10px; margin: 10px 0 0 0; font-size: 0.9rem; }
.legend span { display: inline-flex; align-items: center; gap: 4px; }
.legend i { width: 14px; height: 14px; display: inline-block; border-radius: 3px; }
.help { color: var(--muted); font-size: 0.95rem; max-width: 60em; }
"""

_JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("__DATA_ID__").textContent);
  var A = data.attentions;              // [layer][head][query][key]
  var L = data.num_layers, H = data.num_heads;
  var T = data.tokens.length, S = data.key_tokens.length;
  var ROW = 26;
  // Okabe & Ito colours first, then more distinct hues for models with many heads
  var COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C564B",
                "#7F3C8D", "#11A579", "#3969AC", "#F2B701", "#E73F74", "#80BA5A", "#E68310", "#008695"];
  var layerSel = document.getElementById("layer");
  var headSel = document.getElementById("head");
  var thresh = document.getElementById("threshold");
  var threshOut = document.getElementById("threshold-value");
  var canvas = document.getElementById("lines");
  var qCol = document.getElementById("queries");
  var kCol = document.getElementById("keys");
  var legend = document.getElementById("legend");
  var hover = null;                      // {side: "q"|"k", index: n} while a token is hovered

  function label(t) {
    if (t === "") return "\u2205";
    return t.replace(/\n/g, "\\n").replace(/\t/g, "\\t").replace(/ /g, "\u2423");
  }
  function option(sel, value, text) {
    var o = document.createElement("option");
    o.value = value; o.textContent = text; sel.appendChild(o);
  }
  for (var l = 0; l < L; l++) option(layerSel, String(l), "layer " + l);
  option(headSel, "mean", "mean over heads");
  option(headSel, "all", "all heads (one colour each)");
  for (var h = 0; h < H; h++) option(headSel, String(h), "head " + h);
  layerSel.value = String(L - 1);
  headSel.value = "mean";

  function makeTokens(col, tokens, side) {
    var h2 = document.createElement("h2");
    h2.textContent = side === "q" ? "query (attending)" : "key (attended to)";
    col.appendChild(h2);
    var els = [];
    tokens.forEach(function (t, i) {
      var d = document.createElement("div");
      d.className = "token";
      d.dataset.index = String(i);
      var w = document.createElement("span");
      w.className = "weight";
      var txt = document.createElement("span");
      txt.textContent = label(t);
      if (side === "q") { d.appendChild(w); d.appendChild(txt); } else { d.appendChild(txt); d.appendChild(w); }
      d.title = (side === "q" ? "query " : "key ") + i + ": " + JSON.stringify(t);
      d.addEventListener("mouseenter", function () { hover = {side: side, index: i}; draw(); });
      d.addEventListener("mouseleave", function () { hover = null; draw(); });
      col.appendChild(d);
      els.push(d);
    });
    return els;
  }
  var qEls = makeTokens(qCol, data.tokens, "q");
  var kEls = makeTokens(kCol, data.key_tokens, "k");

  // The weights of the current selection: a list of {color, w: [T][S]}
  function selection() {
    var layer = A[parseInt(layerSel.value, 10)];
    var v = headSel.value;
    if (v === "all") {
      return layer.map(function (m, h) { return {color: COLORS[h % COLORS.length], w: m, name: "head " + h}; });
    }
    if (v === "mean") {
      var mean = [];
      for (var i = 0; i < T; i++) {
        var row = new Array(S).fill(0);
        for (var h = 0; h < H; h++) for (var j = 0; j < S; j++) row[j] += layer[h][i][j] / H;
        mean.push(row);
      }
      return [{color: COLORS[0], w: mean, name: "mean over " + H + " heads"}];
    }
    var hh = parseInt(v, 10);
    return [{color: COLORS[hh % COLORS.length], w: layer[hh], name: "head " + hh}];
  }

  function draw() {
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth || 300;
    var height = Math.max(T, S) * ROW;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    canvas.style.height = height + "px";
    var ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    var min = parseFloat(thresh.value);
    threshOut.textContent = min.toFixed(2);
    var sel = selection();
    var many = sel.length > 1;
    sel.forEach(function (s) {
      ctx.strokeStyle = s.color;
      for (var i = 0; i < T; i++) {
        if (hover && hover.side === "q" && hover.index !== i) continue;
        for (var j = 0; j < S; j++) {
          if (hover && hover.side === "k" && hover.index !== j) continue;
          var w = s.w[i][j];
          if (w <= min || w <= 0) continue;
          ctx.globalAlpha = Math.min(1, many ? 0.85 * w : 0.08 + 0.92 * w);
          ctx.lineWidth = 1 + 3 * w;
          ctx.beginPath();
          ctx.moveTo(0, (i + 0.5) * ROW);
          ctx.lineTo(width, (j + 0.5) * ROW);
          ctx.stroke();
        }
      }
    });
    ctx.globalAlpha = 1;
    // token highlighting and the weights beside the other column
    qEls.forEach(function (e) { e.classList.remove("active"); e.style.background = ""; e.firstChild.textContent = ""; });
    kEls.forEach(function (e) { e.classList.remove("active"); e.style.background = ""; e.lastChild.textContent = ""; });
    if (hover && !many) {
      var w = sel[0].w;
      if (hover.side === "q") {
        qEls[hover.index].classList.add("active");
        kEls.forEach(function (e, j) {
          e.lastChild.textContent = w[hover.index][j].toFixed(2);
          e.style.background = "rgba(0, 114, 178, " + (0.6 * w[hover.index][j]).toFixed(3) + ")";
        });
      } else {
        kEls[hover.index].classList.add("active");
        qEls.forEach(function (e, i) {
          e.firstChild.textContent = w[i][hover.index].toFixed(2);
          e.style.background = "rgba(0, 114, 178, " + (0.6 * w[i][hover.index]).toFixed(3) + ")";
        });
      }
    } else if (hover) {
      (hover.side === "q" ? qEls : kEls)[hover.index].classList.add("active");
    }
    legend.innerHTML = "";
    sel.forEach(function (s) {
      var span = document.createElement("span");
      var swatch = document.createElement("i");
      swatch.style.background = s.color;
      span.appendChild(swatch);
      span.appendChild(document.createTextNode(s.name));
      legend.appendChild(span);
    });
  }
  layerSel.addEventListener("change", draw);
  headSel.addEventListener("change", draw);
  thresh.addEventListener("input", draw);
  window.addEventListener("resize", draw);
  draw();
})();
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="attnlab head view (attnlab-output)">
<title>__TITLE__</title>
<style>__CSS__</style>
</head>
<body>
<h1>__TITLE__</h1>
<p class="subtitle">__SUBTITLE__</p>
<div class="controls">
  <label>Layer <select id="layer"></select></label>
  <label>Head <select id="head"></select></label>
  <label>Hide weights below <input type="range" id="threshold" min="0" max="0.5" step="0.01" value="0">
    <output id="threshold-value">0.00</output></label>
</div>
<div class="view">
  <div class="column queries" id="queries"></div>
  <canvas id="lines" width="300" height="100" aria-label="attention lines from queries to keys"></canvas>
  <div class="column keys" id="keys"></div>
</div>
<div class="legend" id="legend"></div>
<p class="help">Each line joins a query (left) to a key (right); the darker and thicker the line, the more
attention the query pays to that key (each query's weights sum to 1). Hover a token on the left to see where it
looks, or a token on the right to see which tokens look at it; the weights appear beside the other column.</p>
<script type="application/json" id="__DATA_ID__">__DATA__</script>
<script>__JS__</script>
</body>
</html>
"""

__all__ = ["head_view_data", "head_view_html", "read_head_view_data", "write_head_view"]
