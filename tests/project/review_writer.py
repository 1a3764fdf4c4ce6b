"""A separate reviewer process for the review store's concurrency tests.

``python -m tests.dashboard.review_writer write URL REVIEWER N GO_FILE``
    wait until GO_FILE exists, open the store (racing the others to create its schema), then
    alternately accept and reject box 1 of subject 1 N times, the reason naming the reviewer and
    the decision's number.
``python -m tests.dashboard.review_writer die URL``
    start adding a box and kill this process with SIGKILL right after the decision's INSERT ran,
    before its transaction commits.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from project.reviews import ReviewStore

SOURCE = "concurrency-run"
BOX = {"x": 10.0, "y": 20.0, "width": 30.0, "height": 40.0}


def write(url: str, reviewer: str, count: int, go_file: Path) -> None:
    deadline = time.monotonic() + 120
    while not go_file.exists():
        if time.monotonic() > deadline:
            sys.exit("the go file never appeared")
        time.sleep(0.005)
    with ReviewStore(url) as store:
        for number in range(count):
            store.record(SOURCE, 1, "accept" if number % 2 == 0 else "reject", reviewer,
                         consensus_id=1, original=BOX, reason=f"{reviewer} #{number}")


def die(url: str) -> None:
    def kill_after_decision_insert(connection, cursor, statement, *args):
        if statement.lstrip().upper().startswith("INSERT INTO REVIEW_DECISIONS"):
            os.kill(os.getpid(), signal.SIGKILL)

    sa.event.listen(sa.engine.Engine, "after_cursor_execute", kill_after_decision_insert)
    store = ReviewStore(url)
    store.record(SOURCE, 1, "add", "doomed", geometry={"x": 1, "y": 2, "width": 3, "height": 4})
    sys.exit("still alive after the INSERT")


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3], int(sys.argv[4]), Path(sys.argv[5]))
    else:
        die(sys.argv[2])
