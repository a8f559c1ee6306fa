"""The documented offline install (docs/CLIENT.md) works from a clean copy of the repo.

Copies client/python and proto/ into a temporary clone, runs exactly the documented
commands there (a venv over Debian's packages, pip without build isolation or index:
nothing is downloaded), then runs docs/CLIENT.md's example with the venv's python from
another folder, against the test's server.
"""

import os
import re
import shutil
import subprocess

from docs_example import docs_example

import conftest


def test_offline_pip_install_into_a_venv(server, tmp_path):
    clone = tmp_path / "clone"
    shutil.copytree(os.path.join(conftest.REPO, "proto"), clone / "proto")
    shutil.copytree(conftest.PYTHON_DIR, clone / "client" / "python",
                    ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info",
                                                  ".pytest_cache"))
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_INDEX_URL")}
    # The two commands of docs/CLIENT.md, "Install".
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, env=env, cwd=clone)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-build-isolation",
                          "--no-index", "--disable-pip-version-check", "./client/python"],
                         env=env, cwd=clone, capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import tokensampler, tokensampler.v1.sampler_pb2_grpc as g; "
         "print(tokensampler.__file__); print(g.__file__)"],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    for path in site:  # the installed copy, with stubs generated at install time
        assert path.startswith(str(venv)), path
    run = subprocess.run([str(venv / "bin" / "python"), "-c", docs_example()],
                         env=dict(env, TOKENSAMPLER_SERVER=server.address), cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert re.fullmatch(r"\d+ -?\d+\.\d+ 42 0\n", run.stdout), run.stdout
