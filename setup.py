"""Kiln's one compiled part, the tree walker (kiln/train/_forest.py says why); everything else
about the package is in pyproject.toml. The extension is optional: without a C compiler Kiln
still installs, and LightGBM predicts its trees."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("kiln.train._treewalk", ["src/kiln/train/_treewalk.c"], optional=True),
    ]
)
