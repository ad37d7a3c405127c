"""A real labelled text task that ships offline: which documentation topic a passage comes from.

CPython ships its documentation topics (`pydoc_data.topics`: what `help("TOPIC")` shows),
the embedded corpus of `attnlab.data.text`. Each topic is one section of the Python
Language or Library Reference ("Special method names", "The standard type hierarchy",
"String methods", "pdb -- The Python Debugger", ...). The label of a passage is the
topic its text comes from; nothing is labelled by hand.

Passages are the topics' prose paragraphs (code examples, grammar rules, interactive
sessions and tables are left out). Topics repeat each other's text (the
"specialnames" section contains all of "customization", for example), so a paragraph that
occurs in more than one topic is dropped: every passage has exactly one true label. The
classes are the `num_classes` topics with the most such paragraphs (default 8). With
`unit="sentence"` each paragraph is split into sentences, which gives more, shorter
examples (about 1,800 for 8 classes); the split into train and test is made by *paragraph*
either way, so sentences of one paragraph never sit on both sides (and a sentence that
occurs in more than one paragraph is dropped).

The split is stratified by class and fixed by `seed`. The result is the same on every run
of a given Python version (the topics change a little between versions; `source` names
the version).
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass

import numpy as np

from attnlab.errors import ConfigError

MIN_PARAGRAPH_CHARS = 80  # shorter "paragraphs" are headings, labels and list fragments
MIN_SENTENCE_CHARS = 25
MAX_CLASSES = 20
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(`])")


@dataclass(frozen=True)
class LabelledText:
    """Texts with integer labels, split into train and test."""

    train_texts: tuple[str, ...]
    train_labels: np.ndarray
    test_texts: tuple[str, ...]
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    source: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def chance_accuracy(self) -> float:
        """Accuracy of always answering the test set's most common class."""
        counts = np.bincount(self.test_labels, minlength=self.num_classes)
        return float(counts.max() / max(1, counts.sum()))

    def summary(self) -> str:
        counts = np.bincount(self.train_labels, minlength=self.num_classes)
        per_class = ", ".join(f"{name} {int(n)}" for name, n in zip(self.class_names, counts))
        return (
            f"{len(self.train_texts):,} train / {len(self.test_texts):,} test passages, "
            f"{self.num_classes} classes ({per_class}); {self.source}"
        )


def _is_prose(paragraph: str) -> bool:
    """True for a sentence-like paragraph, False for code, grammar, tables and lists of names."""
    words = paragraph.split()
    if len(words) < 8 or not paragraph.endswith((".", ":", ")")):
        return False
    letters = sum(ch.isalpha() or ch.isspace() for ch in paragraph)
    if letters < 0.85 * len(paragraph):
        return False
    plain = sum(w.strip(".,;:()\"'").isalpha() and w.strip(".,;:()\"'").islower() for w in words)
    return plain >= 0.6 * len(words)


def _prose_paragraphs(text: str) -> list[str]:
    """The topic's prose paragraphs, each joined onto one line.

    Descriptions under a directive are indented in the topic text like code is, so a block
    is kept or dropped by what it reads like, not by its indent: code, grammar rules,
    interactive sessions and tables fail `_is_prose`.
    """
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in block.strip().splitlines()]
        if not lines or any(line.startswith((">>>", "...", "|", "+-")) for line in lines):
            continue
        if any(line and set(line) <= set("*=-~^") for line in lines):
            continue  # a heading with its underline
        paragraph = " ".join(lines)
        if len(paragraph) >= MIN_PARAGRAPH_CHARS and _is_prose(paragraph):
            out.append(paragraph)
    return out


def split_sentences(paragraph: str) -> list[str]:
    """Split a paragraph at sentence ends (a '.', '!' or '?' followed by a capital)."""
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if len(s.strip()) >= MIN_SENTENCE_CHARS]


def topic_paragraphs() -> dict[str, list[str]]:
    """Each pydoc topic's prose paragraphs that occur in no other topic."""
    from pydoc_data import topics

    paragraphs = {name: _prose_paragraphs(topics.topics[name]) for name in sorted(topics.topics)}
    seen = Counter(p for name in paragraphs for p in set(paragraphs[name]))
    return {name: [p for p in dict.fromkeys(ps) if seen[p] == 1] for name, ps in paragraphs.items()}


def load_doc_topics(
    *, num_classes: int = 8, unit: str = "paragraph", test_fraction: float = 0.25, seed: int = 0
) -> LabelledText:
    """Passages of CPython's documentation labelled by the topic they come from (offline).

    Args:
        num_classes: the number of topics, those with the most unique prose paragraphs (2-20).
        unit: "paragraph" or "sentence" (see the module docstring).
        test_fraction: the share of each class's paragraphs held out for testing.
        seed: fixes the split.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or not 2 <= num_classes <= MAX_CLASSES:
        raise ConfigError(f"num_classes must be an integer from 2 to {MAX_CLASSES}, got {num_classes!r}")
    if unit not in ("paragraph", "sentence"):
        raise ConfigError(f"unit must be 'paragraph' or 'sentence', got {unit!r}")
    if not isinstance(test_fraction, (int, float)) or not 0.05 <= float(test_fraction) <= 0.5:
        raise ConfigError(f"test_fraction must be between 0.05 and 0.5, got {test_fraction!r}")
    by_topic = topic_paragraphs()
    ranked = sorted(by_topic, key=lambda name: (-len(by_topic[name]), name))[:num_classes]
    class_names = tuple(sorted(ranked))
    # A sentence that recurs ("Changed in version 3.8.", a repeated caveat) could land on both sides.
    repeats = Counter(sentence for name in class_names for p in by_topic[name] for sentence in set(split_sentences(p)))
    rng = np.random.default_rng(seed)
    train: list[tuple[str, int]] = []
    test: list[tuple[str, int]] = []
    for label, name in enumerate(class_names):
        paragraphs = by_topic[name]
        order = rng.permutation(len(paragraphs))
        n_test = max(1, round(len(paragraphs) * float(test_fraction)))
        for rank, index in enumerate(order):
            paragraph = paragraphs[index]
            if unit == "sentence":
                pieces = [x for x in dict.fromkeys(split_sentences(paragraph)) if repeats[x] == 1]
            else:
                pieces = [paragraph]
            (test if rank < n_test else train).extend((piece, label) for piece in pieces)
    # Interleave the classes in a fixed shuffled order (a slice of the lists is then a fair sample).
    train = [train[i] for i in rng.permutation(len(train))]
    test = [test[i] for i in rng.permutation(len(test))]
    version = ".".join(map(str, sys.version_info[:3]))
    return LabelledText(
        train_texts=tuple(t for t, _ in train),
        train_labels=np.array([y for _, y in train], dtype=np.int64),
        test_texts=tuple(t for t, _ in test),
        test_labels=np.array([y for _, y in test], dtype=np.int64),
        class_names=class_names,
        source=(
            f"CPython {version} documentation topics (pydoc_data.topics), {unit}s labelled by topic; "
            f"split by paragraph, seed {seed}"
        ),
    )
