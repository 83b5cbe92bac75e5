"""environment.yml (conda) and pyproject.toml (pip) promise the same environment.

The course is designed around a handful of packages. Each must be named by both files, so
that neither way of installing silently drops one; both files are parsed, not grepped.
"""
from __future__ import annotations

import copy
import re
import sys

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# The packages the course is designed around, by their PyPI names.
COURSE_PACKAGES = ("jupyter-book", "jupyterlab", "torch", "torchvision", "matplotlib",
                   "nbval", "ipywidgets")
# conda-forge names that differ from PyPI's.
CONDA_TO_PYPI = {"pytorch": "torch"}
# The pip line of environment.yml that installs this package: `-e .[extra,extra]`.
EDITABLE_SELF = re.compile(r"-e\s+\.\[([^\]]*)\]")


def pyproject_groups() -> dict[str, set[str]]:
    """{"": core dependencies, "book": ..., "test": ..., ...} as canonical PyPI names."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    groups = {"": project["dependencies"], **project["optional-dependencies"]}
    return {group: {canonicalize_name(Requirement(line).name) for line in lines}
            for group, lines in groups.items()}


def load_environment() -> dict:
    return yaml.safe_load((REPO / "environment.yml").read_text(encoding="utf-8"))


def conda_specs(environment: dict) -> dict[str, str]:
    """The conda packages of environment.yml, PyPI name -> the spec as written."""
    specs = {}
    for entry in environment["dependencies"]:
        if isinstance(entry, str):
            name = re.match(r"[A-Za-z0-9_.\-]+", entry).group(0)
            name = canonicalize_name(CONDA_TO_PYPI.get(name, name))
            specs[name] = entry
    return specs


def pip_lines(environment: dict) -> list[str]:
    return [line for entry in environment["dependencies"] if isinstance(entry, dict)
            for line in entry.get("pip", [])]


def missing_from_conda(environment: dict) -> list[str]:
    return [name for name in COURSE_PACKAGES if name not in conda_specs(environment)]


def test_pyproject_names_every_course_package():
    named = set().union(*pyproject_groups().values())
    assert [name for name in COURSE_PACKAGES if name not in named] == []


def test_jupyterlab_and_torchvision_are_extras_not_requirements():
    groups = pyproject_groups()
    assert "jupyterlab" in groups["lab"]
    assert "ipykernel" in groups["lab"]
    assert "torchvision" in groups["vision"]
    # The package itself needs neither: `pip install vae-course` must not pull them in.
    assert {"jupyterlab", "torchvision"}.isdisjoint(groups[""])


def test_environment_yml_names_every_course_package():
    environment = load_environment()
    assert environment["channels"][0] == "conda-forge"
    assert missing_from_conda(environment) == []


def test_the_check_notices_a_missing_package():
    environment = copy.deepcopy(load_environment())
    environment["dependencies"] = [entry for entry in environment["dependencies"]
                                   if entry != "torchvision"]
    assert missing_from_conda(environment) == ["torchvision"]


def test_environment_yml_installs_the_package_with_every_extra():
    # A misspelt or forgotten extra only makes pip print a warning; here it fails.
    matches = [EDITABLE_SELF.fullmatch(line.strip()) for line in pip_lines(load_environment())]
    extras = [{extra.strip() for extra in m.group(1).split(",")} for m in matches if m]
    assert len(extras) == 1, "environment.yml must install the package once with `-e .[...]`"
    assert extras[0] == set(pyproject_groups()) - {""}


def test_conda_provides_the_binary_and_lab_dependencies():
    # Whatever pip would otherwise fetch for the core, lab and vision groups must come from
    # conda-forge, so that pip never replaces conda's pytorch build with a PyPI wheel.
    groups = pyproject_groups()
    needed = groups[""] | groups["lab"] | groups["vision"]
    assert sorted(needed - set(conda_specs(load_environment()))) == []


def test_both_files_keep_jupyter_book_below_2():
    # The book is a Jupyter Book 1.x project (_config.yml, _toc.yml).
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    book = [Requirement(line) for line in project["optional-dependencies"]["book"]]
    conda = conda_specs(load_environment())["jupyter-book"]
    for specifier in ([r.specifier for r in book if r.name == "jupyter-book"]
                      + [SpecifierSet(conda[len("jupyter-book"):])]):
        assert "1.0.4" in specifier and "2.0.0" not in specifier, specifier

