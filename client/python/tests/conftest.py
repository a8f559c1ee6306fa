"""Test fixtures: the tokensampler package from this source tree, stubs generated from
proto/ for this run, and a real tokensampler-server on a free port.

Environment (ctest sets them; defaults suit a build in <repo>/build):
  TOKENSAMPLER_SERVER_BIN   the server binary (default <repo>/build/server/tokensampler-server)
  TOKENSAMPLER_PY_STUBS     where to generate the stubs (default: a temporary folder)
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import pytest

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(PYTHON_DIR))


def _setup_import_path() -> None:
    sys.path.insert(0, PYTHON_DIR)
    import stubgen

    out = os.environ.get("TOKENSAMPLER_PY_STUBS") or tempfile.mkdtemp(prefix="ts-stubs-")
    stubgen.generate(out)
    sys.path.insert(1, out)


_setup_import_path()


class ServerProcess:
    """tokensampler-server on 127.0.0.1:0 and on a Unix socket in a temporary folder
    (`unix_address`, for shared memory); the port comes from its event=listening line."""

    def __init__(self, *flags: str):
        binary = os.environ.get("TOKENSAMPLER_SERVER_BIN") or os.path.join(
            REPO, "build", "server", "tokensampler-server")
        self.log = tempfile.TemporaryFile(mode="w+")
        self.socket_dir = tempfile.TemporaryDirectory(prefix="ts-sock-")
        self.unix_address = "unix:" + os.path.join(self.socket_dir.name, "sampler.sock")
        self.proc = subprocess.Popen(
            [binary, f"--address=127.0.0.1:0,{self.unix_address}", "--workers=2",
             "--lame_duck=0", "--drain_timeout=5s", *flags],
            stderr=self.log, stdout=subprocess.DEVNULL)
        deadline = time.time() + 20
        self.address = None
        while self.address is None:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited early:\n" + self.read_log())
            match = re.search(r"event=listening address=([^\s,]+:\d+)", self.read_log())
            if match:
                self.address = match.group(1)
            elif time.time() > deadline:
                self.proc.kill()
                raise RuntimeError("no event=listening line:\n" + self.read_log())
            else:
                time.sleep(0.02)

    def read_log(self) -> str:
        if self.log.closed:
            return self.final_log
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -1
        finally:
            self.socket_dir.cleanup()
            self.final_log = self.read_log()
            self.log.close()


@pytest.fixture(scope="session")
def server():
    proc = ServerProcess()
    yield proc
    rc = proc.stop()
    assert rc == 0, f"server exit code {rc} on SIGTERM:\n{proc.read_log()}"


@pytest.fixture
def client(server):
    import tokensampler

    with tokensampler.Client(server.address, timeout=30) as c:
        yield c
