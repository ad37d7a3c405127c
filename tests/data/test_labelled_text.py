"""The offline labelled text task: pydoc topics, one true label per passage, a clean split."""

from __future__ import annotations

import numpy as np
import pytest

from attnlab.data.labelled_text import load_doc_topics, split_sentences, topic_paragraphs
from attnlab.errors import ConfigError


def test_every_passage_has_one_true_label() -> None:
    by_topic = topic_paragraphs()
    owner: dict[str, str] = {}
    for name, paragraphs in by_topic.items():
        for p in paragraphs:
            assert p not in owner, f"{p[:60]!r} is in both {owner.get(p)} and {name}"
            owner[p] = name
    data = load_doc_topics()
    from pydoc_data import topics

    for text, label in zip(data.train_texts[:50], data.train_labels[:50]):
        # The passage's words really are in the topic it is labelled with.
        assert " ".join(text.split()[:6]) in " ".join(topics.topics[data.class_names[label]].split())


@pytest.mark.parametrize("unit", ["paragraph", "sentence"])
def test_split_is_stratified_disjoint_and_fixed_by_seed(unit: str) -> None:
    data = load_doc_topics(unit=unit)
    assert data.num_classes == 8 and len(set(data.class_names)) == 8
    assert set(np.unique(data.train_labels)) == set(range(8)) == set(np.unique(data.test_labels))
    assert not set(data.train_texts) & set(data.test_texts)
    assert 0.1 < len(data.test_texts) / (len(data.train_texts) + len(data.test_texts)) < 0.4
    assert data.chance_accuracy < 0.35
    again = load_doc_topics(unit=unit)
    assert again.train_texts == data.train_texts and np.array_equal(again.test_labels, data.test_labels)
    other = load_doc_topics(unit=unit, seed=1)
    assert other.train_texts != data.train_texts and set(other.class_names) == set(data.class_names)


def test_sentences_never_straddle_the_split() -> None:
    paragraphs = load_doc_topics(unit="paragraph")
    sentences = load_doc_topics(unit="sentence")
    test_paragraph_text = " ".join(paragraphs.test_texts)
    assert len(sentences.train_texts) > len(paragraphs.train_texts)
    for s in sentences.test_texts:
        assert s in test_paragraph_text
    for s in sentences.train_texts[:200]:
        assert s not in test_paragraph_text


def test_code_and_headings_are_left_out() -> None:
    data = load_doc_topics(num_classes=12)
    for text in data.train_texts + data.test_texts:
        assert ">>>" not in text and "***" not in text and "def " not in text[:4]


def test_sentence_splitter() -> None:
    assert split_sentences("Return a copy of the string. It is short, e.g. this one. Done now, it is really done.") == [
        "Return a copy of the string.",
        "It is short, e.g. this one.",
        "Done now, it is really done.",
    ]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_classes": 1}, "num_classes"),
        ({"num_classes": 99}, "num_classes"),
        ({"num_classes": True}, "num_classes"),
        ({"unit": "word"}, "unit"),
        ({"test_fraction": 0.9}, "test_fraction"),
        ({"test_fraction": "x"}, "test_fraction"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_doc_topics(**kwargs)
