"""A real OpenID Connect provider for tests: panva's oidc-provider (npm) under Node.js on loopback.

`tests/oidc_provider/provider.mjs` configures the library with one confidential client and the
test's accounts; the library itself is installed from `tests/oidc_provider/package-lock.json`
into the git-ignored `tests/oidc_provider/node_modules` the first time a test needs it. Its
development login page signs in any login with any password; a login's claims are the ones the
test gives it. Tests skip, saying why, only when Node.js or npm is absent
(scripts/install-system-packages.sh installs both).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.dashboard.serving import free_port

FOLDER = Path(__file__).parent / "oidc_provider"
#: npm installs are not safe to run twice at once in one folder (pytest-xdist workers, two runs).
_INSTALL_LOCK = threading.Lock()


@dataclass
class OidcProvider:
    """A running provider: its issuer URL and the client registered at it."""

    issuer: str
    client_id: str
    client_secret: str


def _installed() -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are needed for the OpenID Connect provider "
                    "(scripts/install-system-packages.sh installs them)")
    with _INSTALL_LOCK:
        if not (FOLDER / "node_modules" / "oidc-provider" / "package.json").is_file():
            subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=FOLDER, check=True,
                           timeout=600)


@contextmanager
def oidc_provider(tmp_path: Path, app_url: str, accounts: dict[str, dict]):
    """Start the provider for an app at ``app_url`` (its ``/login`` is the redirect URI, itself the
    post-logout URI) with ``accounts`` (login -> claims); stop it afterwards."""
    _installed()
    port = free_port()
    config = tmp_path / "oidc-provider.json"
    client = {"client_id": "zoolens-test", "client_secret": "a-test-only-client-secret"}
    config.write_text(json.dumps({
        "port": port, **client, "redirect_uris": [f"{app_url}/login"],
        "post_logout_redirect_uris": [f"{app_url}/"], "accounts": accounts,
    }))
    log = tmp_path / "oidc-provider.log"
    with log.open("w") as errors:
        process = subprocess.Popen(["node", str(FOLDER / "provider.mjs"), str(config)], cwd=FOLDER,
                                   stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        line = process.stdout.readline()  # "listening ISSUER" once it accepts requests
        if not line.startswith("listening "):
            process.kill()
            raise RuntimeError(f"the OpenID Connect provider did not start: {line}{log.read_text()}")
        yield OidcProvider(line.split()[1], client["client_id"], client["client_secret"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
