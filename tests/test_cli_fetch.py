"""``zoolens fetch`` against a real Panoptes-speaking HTTP server on loopback."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import struct
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.panoptes_server import (  # noqa: F401  (panoptes_server is a fixture)
    PASSWORD,
    PROJECT_ID,
    USERNAME,
    data_file,
    panoptes_server,
    two_workflow_classifications,
)
from zoolens.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def signed_in(monkeypatch):
    monkeypatch.setenv("PANOPTES_USERNAME", USERNAME)
    monkeypatch.setenv("PANOPTES_PASSWORD", PASSWORD)


def zoolens_fetch(server, out_dir, *options):
    return main(["fetch", "--project", str(PROJECT_ID), "--out", str(out_dir), "--endpoint", server.endpoint, *options])


def test_fetch_downloads_filters_and_then_finds_everything_current(panoptes_server, tmp_path, signed_in, capsys):
    assert zoolens_fetch(panoptes_server, tmp_path, "--workflow", "21790") == 0

    out, err = capsys.readouterr()
    assert "classifications: downloaded, export of 2024-02-23 16:20 UTC, 42,468 bytes" in out
    assert "subjects: downloaded, export of 2024-02-22 09:05 UTC, 13,220 bytes" in out
    assert "workflows: downloaded, export of 2024-02-21 08:30 UTC, 15,343 bytes" in out
    assert "workflow 21790: kept 13 of 20 rows, removed 7 rows of other workflows (workflow 10: 7)" in out
    assert "downloading the classifications export of 2024-02-23 16:20 UTC" in err
    assert (tmp_path / "project-4242-classifications.csv").read_bytes() == two_workflow_classifications()
    assert (tmp_path / "project-4242-subjects.csv").read_bytes() == data_file("fetch/cat-project-subjects.csv")
    assert (tmp_path / "project-4242-classifications-workflow-21790.csv").exists()
    assert (tmp_path / "project-4242-manifest.json").exists()

    assert zoolens_fetch(panoptes_server, tmp_path, "--workflow", "21790") == 0

    out, err = capsys.readouterr()
    assert out.count("already current") == 3
    media = panoptes_server.requests("GET", "/media/")
    assert [r.status for r in media[-3:]] == [304, 304, 304]
    for text in (out, err):
        assert PASSWORD not in text


def test_wrong_credentials_exit_with_a_clear_error(panoptes_server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PANOPTES_USERNAME", USERNAME)
    monkeypatch.setenv("PANOPTES_PASSWORD", "wrong-password")

    assert zoolens_fetch(panoptes_server, tmp_path) == 1

    out, err = capsys.readouterr()
    assert "zoolens fetch: error: signing in to" in err
    assert "Invalid email or password." in err
    assert "Traceback" not in err and "wrong-password" not in err + out


def test_generate_that_never_becomes_ready_exits_3_and_offers_the_existing_export(panoptes_server, tmp_path, signed_in, capsys):
    panoptes_server.generate["classifications"] = ("never",)

    assert zoolens_fetch(panoptes_server, tmp_path, "--exports", "classifications", "--generate", "--timeout", "1") == 3

    out, err = capsys.readouterr()
    assert "did not finish the new classifications export within 1 s" in err
    assert "latest existing classifications export is from 2024-02-23 16:20 UTC" in err
    assert "run the same command without --generate" in err
    assert not (tmp_path / "project-4242-classifications.csv").exists()


def test_an_interrupted_download_is_resumed_by_running_again(panoptes_server, tmp_path, signed_in, capsys):
    panoptes_server.cut_after = 2000

    assert zoolens_fetch(panoptes_server, tmp_path, "--exports", "classifications") == 1
    assert "fetch again to resume it" in capsys.readouterr().err
    assert not (tmp_path / "project-4242-classifications.csv").exists()

    assert zoolens_fetch(panoptes_server, tmp_path, "--exports", "classifications") == 0
    assert "resuming the classifications export after 2,000 bytes" in capsys.readouterr().err
    assert (tmp_path / "project-4242-classifications.csv").read_bytes() == two_workflow_classifications()


def test_text_from_the_server_cannot_drive_the_terminal(panoptes_server, tmp_path, signed_in, capsys):
    panoptes_server.project_name = "Clumps\x1b]0;owned\x07\x1b[2J"

    assert zoolens_fetch(panoptes_server, tmp_path, "--exports", "workflows") == 0

    out, err = capsys.readouterr()
    assert "project 4242: Clumps?]0;owned??[2J" in out
    assert "\x1b" not in out + err and "\x07" not in out + err


def test_without_credentials_or_a_terminal_it_says_how_to_give_them(panoptes_server, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("PANOPTES_USERNAME", raising=False)
    monkeypatch.delenv("PANOPTES_PASSWORD", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))

    assert zoolens_fetch(panoptes_server, tmp_path) == 1

    assert "set PANOPTES_USERNAME and PANOPTES_PASSWORD" in capsys.readouterr().err
    assert panoptes_server.log == []


def test_an_unknown_export_name_is_refused_with_the_known_ones(panoptes_server, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        zoolens_fetch(panoptes_server, tmp_path, "--exports", "classifications,talk")
    assert exited.value.code == 2
    assert "unknown export talk; choose from classifications,subjects,workflows" in capsys.readouterr().err


def test_zoolens_help_lists_fetch(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "fetch" in capsys.readouterr().out


def _read_until(fd: int, wanted: bytes | None, transcript: bytearray, deadline: float) -> None:
    """Read the terminal until ``wanted`` appears, or until it closes when ``wanted`` is None."""
    while wanted is None or wanted not in transcript:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"waited for {wanted!r}; got {bytes(transcript)!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            if not chunk:
                if wanted is None:
                    return
                raise AssertionError(f"output ended before {wanted!r}; got {bytes(transcript)!r}")
            transcript.extend(chunk)


def test_in_a_terminal_it_asks_for_credentials_without_echoing_the_password(panoptes_server, tmp_path):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PANOPTES_")}
    command = [
        sys.executable, "-m", "zoolens", "fetch", "--project", str(PROJECT_ID), "--exports", "workflows",
        "--out", str(tmp_path), "--endpoint", panoptes_server.endpoint,
    ]
    pid, terminal = pty.fork()
    if pid == 0:  # the child: zoolens on a real terminal
        os.chdir(ROOT)
        os.execve(sys.executable, command, environment)
    # A fresh pty is 0 x 0 characters; give it a real terminal's size, as tqdm sizes its bar to it.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    transcript = bytearray()
    deadline = time.monotonic() + 60
    try:
        _read_until(terminal, b"Username or email: ", transcript, deadline)
        os.write(terminal, USERNAME.encode() + b"\n")
        _read_until(terminal, b"Password: ", transcript, deadline)
        os.write(terminal, PASSWORD.encode() + b"\n")
        _read_until(terminal, None, transcript, deadline)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(terminal)
    assert os.waitstatus_to_exitcode(status) == 0, bytes(transcript)
    assert PASSWORD.encode() not in transcript
    assert b"workflows: downloaded, export of 2024-02-21 08:30 UTC" in transcript
    # On a terminal the download shows a progress bar with size and rate.
    assert b"workflows: 100%" in transcript and b"B/s]" in transcript
    assert (tmp_path / "project-4242-workflows.csv").read_bytes() == data_file("fetch/batch_wf_export.csv")
