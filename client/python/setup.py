"""Build hook: generates the gRPC stubs from proto/ into the package at build time.

Everything else is in pyproject.toml. A regular install puts the stubs into the build
folder (so into the wheel); an editable install writes them next to the sources.
"""

import os
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stubgen  # noqa: E402


class BuildPyWithStubs(build_py):
    def run(self):
        super().run()
        out = stubgen.HERE if getattr(self, "editable_mode", False) else self.build_lib
        stubgen.generate(out)


setup(cmdclass={"build_py": BuildPyWithStubs})
