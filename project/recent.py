"""The recently used values of a cache shared by threads: one place for the per-subject caches (pictures, marks,
a stored subject's rows, thumbnails) that sessions on worker threads fill and read."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Value = TypeVar("Value")


class RecentlyUsed(Generic[Value]):
    """At most ``size`` values by key, the least recently used dropped first; safe to share between threads."""

    def __init__(self, size: int):
        self.size = int(size)
        self._values: OrderedDict[Hashable, Value] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], Value]) -> Value:
        """The value of ``key``, made by ``make()`` when it is not kept. Made outside the lock, so one slow value
        (a read, a render) does not hold up the others; two threads making the same value at once each make it,
        and both get the one kept first."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        made = make()
        with self._lock:
            value = self._values.setdefault(key, made)
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        return value

    def discard(self, key: Hashable, value: Value) -> None:
        """Forget ``key`` if it still holds ``value`` (one that turned out bad), so the next `get` makes it again."""
        with self._lock:
            if self._values.get(key) is value:
                del self._values[key]

    def values(self) -> list[Value]:
        """The values kept now, least recently used first."""
        with self._lock:
            return list(self._values.values())

    def peek(self, key: Hashable) -> Value | None:
        """The value of ``key`` if it is kept, else None; neither made nor counted as a use."""
        with self._lock:
            return self._values.get(key)

    def __len__(self) -> int:
        return len(self._values)
