"""The shared recently-used cache behind the per-subject caches."""

from __future__ import annotations

import threading

from project.recent import RecentlyUsed


def test_keeps_the_most_recently_used_and_makes_a_value_once():
    made = []

    def make(key):
        made.append(key)
        return f"value {key}"

    recent = RecentlyUsed(2)
    assert recent.get(1, lambda: make(1)) == "value 1" and recent.get(2, lambda: make(2)) == "value 2"
    assert recent.get(1, lambda: make(1)) == "value 1"  # kept: not made again, and now the most recent
    recent.get(3, lambda: make(3))  # drops 2, the least recently used
    assert made == [1, 2, 3] and recent.values() == ["value 1", "value 3"]
    recent.get(2, lambda: make(2))
    assert made == [1, 2, 3, 2] and len(recent) == 2


def test_threads_making_one_key_at_once_all_get_the_value_kept_first():
    recent, started, results = RecentlyUsed(4), threading.Barrier(2), []

    def make():
        started.wait(10)  # both threads are making the value before either keeps it
        return object()

    threads = [threading.Thread(target=lambda: results.append(recent.get("key", make))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 2 and results[0] is results[1] is recent.values()[0]


def test_peek_neither_makes_nor_uses_and_discard_forgets_only_the_value_it_names():
    recent = RecentlyUsed(2)
    first = recent.get(1, object)
    recent.get(2, object)
    assert recent.peek(1) is first and recent.peek(3) is None and len(recent) == 2
    recent.get(3, object)  # 1 is dropped: peeking did not make it the most recent
    assert recent.peek(1) is None
    third = recent.peek(3)
    recent.discard(3, object())  # another value: kept
    assert recent.peek(3) is third
    recent.discard(3, third)
    assert recent.peek(3) is None and recent.get(3, lambda: "made again") == "made again"
