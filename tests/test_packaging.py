"""The wheel a learner gets from ``pip install`` (Colab installs it that way, not editable)
ships every module of the package and the pretrained weights.

An editable install reads the source tree, so a subpackage missing from ``pyproject.toml``'s
``packages`` list would pass every other test here and break only for learners.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_ships_every_module_and_the_weights(tmp_path):
    # Build from a clean copy: the checkout's vae_course.egg-info (left by the editable install)
    # lists every file it has seen, and setuptools would ship those whatever pyproject says.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "vae_course", source / "vae_course",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    # --no-build-isolation: build with this environment's setuptools, offline
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                    "--quiet", "--wheel-dir", str(tmp_path)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("vae_course-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    package = REPO / "vae_course"
    wanted = {path.relative_to(REPO).as_posix() for pattern in ("**/*.py", "weights/*")
              for path in package.glob(pattern) if "__pycache__" not in path.parts}
    assert any(name.endswith(".pt") for name in wanted) and "vae_course/exercises/__init__.py" in wanted
    assert sorted(wanted - shipped) == []
