"""Generated seq2seq tasks: correct targets, determinism, held-out split, batch layout."""

import numpy as np
import pytest

from attnlab.data.seq2seq_tasks import (
    IGNORE_INDEX,
    TASK_NAMES,
    NumbersTask,
    TaskConfig,
    TaskData,
    make_task,
    number_to_words,
    task_tokenizer,
)
from attnlab.errors import ConfigError, DataError

UNITS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen".split()
    )
}
TENS = {
    w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if w != "_"
}


def parse_words(text: str) -> int:
    """An independent reader of number words (right to left, by scale)."""
    scales = {"million": 10**6, "thousand": 10**3}
    total, chunk = 0, []
    words = text.split()
    for word in words + ["<end>"]:
        if word in scales or word == "<end>":
            value = 0
            for w in chunk:
                if w == "hundred":
                    value *= 100
                else:
                    value += sum(UNITS.get(p, 0) + TENS.get(p, 0) for p in w.split("-"))
            total += value * scales.get(word, 1)
            chunk = []
        else:
            chunk.append(word)
    return total


@pytest.mark.parametrize(
    "n, words",
    [
        (0, "zero"),
        (7, "seven"),
        (15, "fifteen"),
        (40, "forty"),
        (42, "forty-two"),
        (100, "one hundred"),
        (110, "one hundred ten"),
        (1001, "one thousand one"),
        (20_000, "twenty thousand"),
        (342_506, "three hundred forty-two thousand five hundred six"),
        (1_000_000, "one million"),
        (7_000_019, "seven million nineteen"),
    ],
)
def test_number_words_by_hand(n, words):
    assert number_to_words(n) == words
    assert parse_words(words) == n


def test_number_words_round_trip_through_an_independent_parser():
    rng = np.random.default_rng(0)
    for n in list(range(0, 1200)) + rng.integers(0, 10**9, 2000).tolist():
        assert parse_words(number_to_words(int(n))) == n
    with pytest.raises(ValueError):
        number_to_words(10**9)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_targets_are_correct(name):
    task = make_task(TaskConfig.from_name(name))
    rng = np.random.default_rng(1)
    for _ in range(300):
        source, target = task.sample(rng)
        if name == "reverse":
            assert target == source[::-1]
        elif name == "sort":
            assert target == "".join(sorted(source))
        else:
            assert target == str(parse_words(source))
            assert number_to_words(int(target)) == source
        assert task.target(source) == target
        assert set(source) <= set(task.source_alphabet()) and set(target) <= set(task.target_alphabet())
        assert len(source) <= task.max_source_chars() and len(target) <= task.max_target_chars()


def test_lengths_follow_the_config():
    rng = np.random.default_rng(2)
    task = make_task(TaskConfig(name="reverse", min_length=3, max_length=5, symbols="xyz"))
    lengths = {len(task.sample(rng)[0]) for _ in range(200)}
    assert lengths == {3, 4, 5}
    numbers = make_task(TaskConfig(name="numbers", min_length=2, max_length=3))
    digits = {len(numbers.sample(rng)[1]) for _ in range(200)}
    assert digits == {2, 3}
    assert make_task(TaskConfig(name="sort", symbols="cba")).target("abcab") == "cbbaa"  # the order of `symbols`


def test_longest_number_spelling_is_exact():
    for digits in (1, 2, 3, 4):
        task = NumbersTask(TaskConfig(name="numbers", min_length=1, max_length=digits))
        assert task.max_source_chars() == max(len(number_to_words(n)) for n in range(10**digits))


@pytest.mark.parametrize("name", TASK_NAMES)
def test_generation_is_deterministic(name):
    task = make_task(name)
    a = [task.sample(np.random.default_rng(5)) for _ in range(3)]
    b = [task.sample(np.random.default_rng(5)) for _ in range(3)]
    assert a == b
    d1, d2 = TaskData(task, task_tokenizer(task)), TaskData(make_task(name), task_tokenizer(task))
    assert d1.eval_examples == d2.eval_examples  # the same held-out examples on every run
    b1 = d1.train_batch(8, np.random.default_rng(3))
    b2 = d2.train_batch(8, np.random.default_rng(3))
    for key in b1:
        np.testing.assert_array_equal(b1[key], b2[key])


@pytest.mark.parametrize("name", TASK_NAMES)
def test_held_out_examples_are_disjoint_from_training_examples(name):
    task = make_task(TaskConfig.from_name(name, num_eval_examples=200))
    data = TaskData(task, task_tokenizer(task))
    held_out = {s for s, _ in data.eval_examples}
    assert len(held_out) == 200
    train = {s for s, _ in data.train_examples(3000, np.random.default_rng(0))}
    assert not held_out & train
    assert all(task.is_held_out(s) for s in held_out) and not any(task.is_held_out(s) for s in train)
    # about held_out_fraction of all sources are held out
    rng = np.random.default_rng(9)
    share = np.mean([task.is_held_out(task.sample_source(rng)) for _ in range(4000)])
    assert 0.07 < share < 0.13


def test_batch_layout_by_hand():
    task = make_task(TaskConfig(name="reverse", symbols="ab", min_length=1, max_length=3))
    tok = task_tokenizer(task)
    assert tok.itos == ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b"]
    data = TaskData(task, tok)
    batch = data.encode_pairs([("ab", "ba"), ("aab", "baa")])
    assert batch["input_ids"].tolist() == [[4, 5, 2, 0], [4, 4, 5, 2]]
    assert batch["attention_mask"].tolist() == [[True, True, True, False], [True] * 4]
    assert batch["decoder_input_ids"].tolist() == [[1, 5, 4, 0], [1, 5, 4, 4]]
    assert batch["labels"].tolist() == [[5, 4, 2, IGNORE_INDEX], [5, 4, 4, 2]]


def test_eval_batches_cover_the_held_out_examples():
    task = make_task(TaskConfig(name="sort", num_eval_examples=50))
    data = TaskData(task, task_tokenizer(task))
    batches = data.eval_batches(16, 10)
    assert [b["input_ids"].shape[0] for b in batches] == [16, 16, 16, 2]
    assert sum(b["input_ids"].shape[0] for b in data.eval_batches(16, 2)) == 32
    assert data.eval_batches(16, 2, "train", seed=4)[0]["labels"].shape[0] == 16
    with pytest.raises(ConfigError, match="unknown split"):
        data.eval_batches(16, 2, "test")


def test_bad_configs_are_one_clear_error():
    with pytest.raises(ConfigError, match="unknown task 'copy'; choose one of: reverse, sort, numbers"):
        TaskConfig.from_name("copy")
    with pytest.raises(ConfigError, match="unknown task"):
        TaskConfig(name="copy")
    with pytest.raises(ConfigError, match="min_length must be at least 1"):
        TaskConfig(min_length=0)
    with pytest.raises(ConfigError, match="max_length .* must be >= task.min_length"):
        TaskConfig(min_length=5, max_length=3)
    with pytest.raises(ConfigError, match="at most 9"):
        TaskConfig(name="numbers", max_length=10)
    with pytest.raises(ConfigError, match="symbols applies"):
        TaskConfig(name="numbers", symbols="ab")
    with pytest.raises(ConfigError, match="distinct"):
        TaskConfig(symbols="aa")
    with pytest.raises(ConfigError, match="held_out_fraction"):
        TaskConfig(held_out_fraction=1.0)


def test_a_task_too_small_to_split_is_a_data_error():
    # two possible sources ("a", "b"), neither of which hashes into a 1% held-out share
    task = make_task(TaskConfig(name="reverse", symbols="ab", min_length=1, max_length=1, held_out_fraction=0.01))
    assert not task.is_held_out("a") and not task.is_held_out("b")
    data = TaskData(task, task_tokenizer(task))
    assert {s for s, _ in data.train_examples(20, np.random.default_rng(0))} == {"a", "b"}
    with pytest.raises(DataError, match="too few distinct sources"):
        _ = data.eval_examples  # a property: reading it builds the held-out examples


def test_tokenizer_must_know_the_task_characters():
    task = make_task("numbers")
    other = task_tokenizer(make_task("reverse"))
    with pytest.raises(DataError, match="does not know the task characters"):
        TaskData(task, other)
