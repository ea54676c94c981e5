"""The command lines users run: `dg` beside `dagster`, and what each process has to import.

Every CLI call, UI reload and multiprocess-executor step imports the code location, so the import
stays light, and steps that need no TensorFlow never load it.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clustering_dag.definitions import defs
from clustering_dag.settings import PROJECT_ROOT
from clustering_dag_tests.conftest import GRAPH_PROFILE, initialized_dagster_home

BIN = Path(sys.executable).parent
HEAVY = ("tensorflow", "sklearn", "matplotlib", "pandas", "pyarrow", "numpy", "scipy", "h5py")


def python(code: str, env: dict | None = None) -> str:
    proc = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().rpartition("\n")[2]


def dg(*args: str, env: dict, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN / "dg"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "VIRTUAL_ENV": str(BIN.parent), **env})
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return proc


@pytest.mark.parametrize("module", ["clustering_dag.definitions", "clustering_dag.batches"])
def test_importing_a_code_location_loads_no_numeric_library(module):
    loaded = python(f"import sys, {module}; "
                    f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    assert loaded == ""


def test_dg_checks_and_lists_the_code_location(tmp_path, data_dir):
    env = {"DAGSTER_HOME": str(initialized_dagster_home(tmp_path / "home")),
           "CLUSTERING_DAG_DATA_DIR": str(data_dir)}
    assert "All definitions loaded successfully" in dg("check", "defs", env=env).stdout
    listed = json.loads(dg("list", "defs", "--json", env=env).stdout)
    every = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {a["asset_key"] for a in listed["assets"]} == every
    jobs = {"paper_run", "seeds_run", "quick_run", "parallel_quick_run", "celery_run", "celery_smoke_run"}
    assert {j["name"] for j in listed["jobs"]} == jobs
    assert [s["name"] for s in listed["schedules"]] == ["weekly_paper_run"]


def project_copy(tmp_path: Path) -> Path:
    """A copy of the project (its package, pyproject.toml and README) to scaffold into."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, project / name)
    shutil.copytree(PROJECT_ROOT / "clustering_dag", project / "clustering_dag",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return project


def test_an_asset_scaffolded_with_dg_joins_the_code_location(tmp_path, data_dir):
    """`dg scaffold defs` writes into clustering_dag/defs/, and that folder is what the code
    location loads: the new asset is listed beside the others (in a copy of the project)."""
    project = project_copy(tmp_path)
    env = {"DAGSTER_HOME": str(initialized_dagster_home(tmp_path / "home")),
           "CLUSTERING_DAG_DATA_DIR": str(data_dir), "PYTHONPATH": str(project)}
    dg("scaffold", "defs", "dagster.asset", "my_new_asset.py", env=env, cwd=project)
    assert (project / "clustering_dag" / "defs" / "my_new_asset.py").is_file()
    listed = json.loads(dg("list", "defs", "--json", env=env, cwd=project).stdout)
    every = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {a["asset_key"] for a in listed["assets"]} == every | {"my_new_asset"}


def scaffolded_example() -> str:
    """The scaffolded asset as docs/development.md's steps leave it (its code block after the
    marker line)."""
    text = (PROJECT_ROOT / "docs" / "development.md").read_text()
    block = text.split("<!-- the scaffolded asset, as these steps leave it: -->", 1)[1]
    code = block.split("```python\n", 1)[1].split("```", 1)[0]
    return "\n".join(line.removeprefix("  ") for line in code.splitlines()) + "\n"


@pytest.mark.slow
def test_a_scaffolded_asset_is_stored_without_pickle_and_the_whole_graph_runs_with_it(graph_copy, tmp_path):
    """`dg scaffold defs dagster.asset`, then the docs' steps: the plain asset's value goes to the
    code location's default IO manager (JSON here, parquet for a table), no pickle anywhere in the
    cache, and `--select '*' --partition mnist` runs the whole graph with it present (every other
    value reused from the stored run)."""
    project = project_copy(tmp_path)
    env = {"PYTHONPATH": str(project)}
    dg("scaffold", "defs", "dagster.asset", "label_counts.py", env=env, cwd=project)
    (project / "clustering_dag" / "defs" / "label_counts.py").write_text(scaffolded_example())
    profile = project / "clustering_dag" / "profiles" / f"{GRAPH_PROFILE}.yaml"
    proc = subprocess.run([str(BIN / "dagster"), "asset", "materialize", "-m", "clustering_dag.definitions",
                           "--select", "*", "--partition", "mnist", "-c", str(profile)],
                          cwd=project, capture_output=True, text=True, timeout=900,
                          env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-4000:]
    stored = graph_copy.cache / "label_counts" / "mnist.json"
    counts = json.loads(stored.read_text())
    assert sum(counts.values()) == 500 and set(counts) == {str(d) for d in range(10)}  # the smoke test split
    files = [p for p in graph_copy.cache.rglob("*") if p.is_file()]
    assert files and all(p.name.endswith((".parquet", ".weights.h5", ".png", ".json")) for p in files)
    from dagster import DagsterEventType, DagsterInstance

    with DagsterInstance.from_config(str(graph_copy.home)) as instance:
        run = instance.get_runs(limit=1)[0]
        made = {e.dagster_event.asset_key.to_user_string(): e.asset_materialization.metadata
                for e in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)}
    assert set(made) == {k.to_user_string() for k in defs.resolve_all_asset_keys()} | {"label_counts"}
    assert all(meta["reused"].value for key, meta in made.items() if key != "label_counts")


@pytest.mark.slow
def test_dg_launch_materializes_a_selection(tmp_path, data_dir):
    env = {"DAGSTER_HOME": str(initialized_dagster_home(tmp_path / "home")),
           "CLUSTERING_DAG_DATA_DIR": str(data_dir), "CLUSTERING_DAG_CACHE_DIR": str(tmp_path / "cache")}
    config = {"ops": {"raw_dataset": {"config": {"train_rows": 600, "test_rows": 200}}}}
    dg("launch", "--assets", "raw_dataset,noisy_dataset,original_representation,clusters_original",
       "--partition", "fashion_mnist", "--config-json", json.dumps(config), env=env)
    assert (tmp_path / "cache" / "clusters_original" / "fashion_mnist.parquet").stat().st_size > 0


@pytest.mark.slow
def test_steps_that_need_no_tensorflow_never_import_it(graph_copy):
    # Everything upstream of and beside the VAE, cold: data, noise, pixels, their k-means and t-SNE.
    cold = ("import sys, json\n"
            "from dagster import materialize\n"
            "from clustering_dag.definitions import all_assets, resources\n"
            "from clustering_dag.profiles import PROFILES\n"
            "sel = ['raw_dataset', 'noisy_dataset', 'original_representation', 'clusters_original']\n"
            f"cfg = {{'ops': {{k: v for k, v in PROFILES[{GRAPH_PROFILE!r}]()['ops'].items()\n"
            "               if k in ('raw_dataset', 'clusters_original')}}\n"
            "r = materialize(all_assets, selection=sel, partition_key='fashion_mnist', run_config=cfg,\n"
            "                resources=resources)\n"
            "assert r.success\n"
            "print('tensorflow' in sys.modules)\n")
    assert python(cold) == "False"
    # The whole graph again with nothing changed: models are reused, so none is built.
    warm = ("import sys\n"
            "from dagster import materialize\n"
            "from clustering_dag.definitions import all_assets, resources\n"
            "from clustering_dag.profiles import PROFILES\n"
            f"r = materialize(all_assets, partition_key='mnist', run_config=PROFILES[{GRAPH_PROFILE!r}](),\n"
            "                resources=resources)\n"
            "assert r.success\n"
            "assert all(e.materialization.metadata['reused'].value\n"
            "           for e in r.get_asset_materialization_events())\n"
            "print('tensorflow' in sys.modules)\n")
    assert python(warm) == "False"
