"""What a newcomer meets first: the `clustering-dag` command and its help, the pages' tables made
from stored runs (never typed by hand), the licence and the version."""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from clustering_dag import __version__
from clustering_dag.cli import COMMANDS, main
from clustering_dag.core.errors import DataError
from clustering_dag.docs import BLOCK, pages
from clustering_dag.report import json_text, load_stored, markdown
from clustering_dag.settings import PROJECT_ROOT

CLI = Path(sys.executable).parent / "clustering-dag"


def test_the_installed_command_names_every_subcommand_and_its_version():
    assert CLI.is_file(), f"{CLI} is missing: `pip install -e .` installs the command"
    run = subprocess.run([str(CLI), "--help"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert all(re.search(rf"^\s+{c}\s", run.stdout, re.MULTILINE) for c in COMMANDS), run.stdout
    version = subprocess.run([str(CLI), "--version"], capture_output=True, text=True, timeout=120)
    assert version.stdout.strip() == f"clustering-dag {__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_a_help_page_with_usage_and_an_example(command, capsys):
    from clustering_dag.cli import module_main

    for call, prog in ((lambda: main([command, "--help"]), f"clustering-dag {command}"),
                       (lambda: module_main(command, ["--help"]), f"python -m clustering_dag.{command}")):
        with pytest.raises(SystemExit) as done:
            call()
        out = capsys.readouterr().out
        assert done.value.code == 0
        assert out.startswith(f"usage: {prog}") and "example" in out and f"clustering-dag {command}" in \
            out.split("example", 1)[1], out


@pytest.mark.parametrize("argv", [["report"], ["cache", "list"], ["cache", "prune", "--dry-run"]])
def test_a_missing_cache_is_one_line_naming_it_and_the_fix(argv, tmp_path, capsys, monkeypatch):
    missing = tmp_path / "no-cache"
    monkeypatch.setenv("CLUSTERING_DAG_CACHE_DIR", str(missing))
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(missing) in err and "run the pipeline first" in err, err


def test_an_empty_cache_or_a_bad_argument_exits_non_zero(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 1
    assert "no tables in the cache" in capsys.readouterr().err
    for argv in (["report", "--format", "xml"], ["cache", "prune", "--keep", "x"],
                 ["cache", "prune", "--keep", "0"], ["score", "f.npz"]):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 2
    assert "the following arguments are required: --dataset" in capsys.readouterr().err


def _table(dataset: str, variant: str, accuracy: list[float]) -> dict:
    rows = [{"seed": seed, "representation": rep, "dim": dim, "dbi": 1.0 + i, "silhouette": 0.1,
             "chs": 100.0 * (i + 1), "accuracy": acc + 0.1 * i, "nmi": 0.5, "ari": 0.4, "purity": 0.6}
            for seed, acc in zip((1234, 1, 2), accuracy)
            for i, (rep, dim) in enumerate((("original", 784), ("latent", 10)))]
    return {"dataset": dataset, "variant": variant, "comparable": False,
            "settings": {"profile": "seeds", "train_rows": 60000, "test_rows": 10000, "epochs": 10},
            "run": {"id": "0123456789abcdef", "made_at": "2026-12-05T10:00:00+00:00", "commit": "abc1234"},
            "rows": rows}


@pytest.fixture
def project(tmp_path) -> Path:
    """A project folder with a stored run and a README whose two tables name it."""
    (tmp_path / "docs" / "runs").mkdir(parents=True)
    tables = [_table("mnist", "dae", [0.9, 0.92, 0.94]), _table("mnist", "paper", [0.5, 0.6, 0.7])]
    (tmp_path / "docs" / "runs" / "seeds.json").write_text(json_text(tables))
    (tmp_path / "README.md").write_text(
        "# results\n\n<!-- report docs/runs/seeds.json view=accuracy -->\n<!-- /report -->\n\ntext\n\n"
        "<!-- report docs/runs/seeds.json dataset=mnist variant=dae -->\nold numbers\n<!-- /report -->\n")
    return tmp_path


def test_the_pages_tables_are_written_from_the_stored_runs_they_name(project, capsys):
    assert main(["docs", "--root", str(project), "--check"]) == 1
    assert "README.md:3: the table differs" in capsys.readouterr().err
    assert main(["docs", "--root", str(project)]) == 0
    text = (project / "README.md").read_text()
    assert "| representation | MNIST `dae` | MNIST `paper` |" in text
    assert "| latent | **1.020 ± 0.020** | **0.700 ± 0.100** |" in text  # mean ± sd over the seeds
    assert "made by run 01234567 at commit abc1234 on 2026-12-05" in text and "old numbers" not in text
    assert "Profile seeds, mean ± sd over 3 seeds; made at commit abc1234 on 2026-12-05." in text
    assert main(["docs", "--root", str(project), "--check"]) == 0
    (project / "README.md").write_text(text.replace("0.700 ± 0.100", "0.710 ± 0.100"))  # typed by hand
    assert main(["docs", "--root", str(project), "--check"]) == 1
    assert "README.md:3: the table differs from its stored run" in capsys.readouterr().err


def test_a_stored_run_prints_as_the_cache_did_and_bad_ones_are_refused(project, tmp_path, capsys):
    stored = project / "docs" / "runs" / "seeds.json"
    assert main(["report", "--from", str(stored), "--variant", "dae"]) == 0
    assert capsys.readouterr().out.strip() == markdown(load_stored(stored)[:1])
    assert main(["report", "--from", str(stored), "--format", "csv"]) == 0
    csv = capsys.readouterr().out.splitlines()
    assert csv[0].startswith("dataset,variant,profile,") and len(csv) == 1 + 2 * 2  # 2 tables x 2 spaces
    (tmp_path / "bad.json").write_text(json.dumps({"format": "other", "tables": []}))
    with pytest.raises(DataError, match="bad.json is not a stored run"):
        load_stored(tmp_path / "bad.json")
    page = project / "README.md"
    page.write_text(page.read_text().replace("view=accuracy", "view=accuracy colour=red"))
    assert main(["docs", "--root", str(project)]) == 1
    assert "README.md:3: the marker reads" in capsys.readouterr().err


def test_the_project_pages_tables_match_their_stored_runs(capsys):
    blocks = {p.name: len(BLOCK.findall(p.read_text())) for p in pages(PROJECT_ROOT)}
    assert blocks["README.md"] >= 1 and blocks["results.md"] >= 6, blocks  # not passed by having none
    assert main(["docs", "--root", str(PROJECT_ROOT), "--check"]) == 0, capsys.readouterr().err


# Words of a lab notebook, not of a user's page.
NOTEBOOK = re.compile(r"missed by|aimed at|\bbudget|today's|the two variants|\bstretch\b", re.IGNORECASE)


def test_the_user_s_pages_hold_no_project_history_or_targets():
    found = [f"{p.name}:{i}: {line.strip()}" for p in pages(PROJECT_ROOT)
             for i, line in enumerate(p.read_text().splitlines(), 1) if NOTEBOOK.search(line)]
    assert not found, found


def test_the_licence_the_version_and_the_changelog_agree():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert (PROJECT_ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")
    assert project["version"] == __version__
    assert f"## {__version__}" in (PROJECT_ROOT / "CHANGELOG.md").read_text()
