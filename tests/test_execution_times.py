"""tools/run_notebooks.py records each notebook's wall time (tools/execution_times.py)."""
import json

import nbformat
import pytest
import torch

from repo_tools import load_tool

execution_times = load_tool("execution_times")
run_notebooks = load_tool("run_notebooks")


def test_a_run_is_recorded_with_its_mode_date_hardware_torch_and_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_COURSE_DATASET", "fashion-mnist")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os\nprint(os.environ.get('VAE_COURSE_QUICK'))")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    before = path.read_text()
    times = tmp_path / "times.json"

    seconds = run_notebooks.run_and_record(path, quick=True, times_path=times)
    data = json.loads(times.read_text())
    (name, runs), = data["notebooks"].items()
    assert name == str(path) and list(runs) == ["quick"]
    run = runs["quick"]
    assert run["seconds"] == round(seconds, 1) > 0
    assert run["mode"] == "quick" and run["torch"] == torch.__version__
    assert run["dataset"] == "fashion-mnist" and run["hardware"]
    assert run["date"].startswith("20") and run["date"].endswith("Z")
    assert path.read_text() == before  # quick mode times the notebook, never saves it

    run_notebooks.run_and_record(path, quick=False, times_path=times)
    run_notebooks.run_and_record(path, quick=False, times_path=times)
    runs = json.loads(times.read_text())["notebooks"][str(path)]
    assert sorted(runs) == ["quick", "real"]  # replaced in place, one entry per mode
    saved = nbformat.read(path, as_version=4)
    assert saved.cells[0].outputs[0]["text"].strip() == "None"  # real mode: quick switched off


def test_budgets_are_computed_from_the_record():
    names = ["notebooks/01_a.ipynb", "notebooks/02_b.ipynb", "book/page.ipynb"]
    run = {"date": "2026-11-30T00:00:00Z", "hardware": "CPU x", "torch": "2", "dataset": "mnist"}
    data = {"notebooks": {
        "notebooks/01_a.ipynb": {"real": {**run, "seconds": 100.0, "mode": "real"},
                                 "quick": {**run, "seconds": 5.0, "mode": "quick"}},
        "notebooks/02_b.ipynb": {"real": {**run, "seconds": 200.0, "mode": "real"}},
    }}
    status = {b["budget"].split(" ")[0]: b["status"] for b in execution_times.summary(data, names)}
    assert status["01_a"] == "met" and status["02_b"] == "not met"
    assert status["whole"] == "not measured"  # book/page.ipynb has no real-mode time yet
    assert status["CI"] == "not measured"
    rows = execution_times.table_rows(data, names)
    assert [r["real_s"] for r in rows] == [100.0, 200.0, None]
    assert [r["quick_s"] for r in rows] == [5.0, None, None]


def test_a_whole_ci_log_is_recorded_and_checked_against_the_budget(tmp_path):
    log = ("ci: on AMD EPYC 7B13, 2 cores, 2026-11-30T23:00:00Z\nsome test output\n"
           "ci: make test took 640 s\nci: make test-portability took 342 s\n"
           "ci: make test-vision took 400 s; all of CI 1382 s\n")
    run = execution_times.ci_run(log)
    assert run["seconds"] == 1382 and run["date"] == "2026-11-30T23:00:00Z"
    assert run["stages"] == {"make test": 640, "make test-portability": 342, "make test-vision": 400}
    assert run["hardware"] == "CPU AMD EPYC 7B13, 2 cores"
    times = tmp_path / "times.json"
    data = execution_times.record_ci(run, times)
    assert json.loads(times.read_text()) == data
    ci = [b for b in execution_times.summary(data, ["notebooks/01_a.ipynb"]) if b["budget"].startswith("CI")]
    assert ci[0]["status"] == "not met" and "23.0 min" in ci[0]["measured"]
    assert "make test 10.7 min" in ci[0]["measured"]
    data["ci"]["seconds"] = 500.0
    ci = [b for b in execution_times.summary(data, ["notebooks/01_a.ipynb"]) if b["budget"].startswith("CI")]
    assert ci[0]["status"] == "met"
    for unfinished in ("ci: make test took 640 s\n", log.replace("ci: on", "ci: in")):
        with pytest.raises(ValueError, match="ci: on"):
            execution_times.ci_run(unfinished)
