"""Builds the package with `tributary.v1` generated from `proto/` (see generate.py), so the
generated modules are never committed and always match the protos they are built from."""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate  # noqa: E402


class BuildWithGeneratedCode(build_py):
    def run(self):
        super().run()
        generate(Path(self.build_lib))


setup(cmdclass={"build_py": BuildWithGeneratedCode})
