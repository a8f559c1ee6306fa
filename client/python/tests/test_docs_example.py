"""docs/CLIENT.md's Python example runs as written (against the test's server)."""

import os
import re
import subprocess
import sys

from docs_example import docs_example

import conftest


def test_docs_example_is_short_and_runs(server):
    code = docs_example()
    assert len(code.strip().splitlines()) <= 10
    env = dict(os.environ, TOKENSAMPLER_SERVER=server.address,
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120, cwd=conftest.REPO)
    assert out.returncode == 0, out.stderr
    # It prints the token, its logprob, the seed 42 and step 0.
    assert re.fullmatch(r"\d+ -?\d+\.\d+ 42 0\n", out.stdout), out.stdout
