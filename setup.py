"""Package list for setuptools (everything else is in pyproject.toml).

The wheel carries the ``aestudio*`` packages plus two data-only packages:
``aestudio_models`` (the shipped model zoo, top-level ``models/`` in the
repository) and ``aestudio_samples`` (``resources/samples/``). Their folders are
mapped in pyproject's ``[tool.setuptools.package-dir]``; they are listed here
because a ``packages.find`` table in pyproject.toml cannot add mapped packages.
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["aestudio*"]) + ["aestudio_models", "aestudio_samples"])
