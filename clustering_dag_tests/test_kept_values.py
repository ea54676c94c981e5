"""Every value kept by its cache key: a run under settings seen before reuses them; the cache is
bounded, listed and pruned without losing what a run needs; a run can force a recompute.

The store's rules on small files (a local folder and an object store), then the pipeline on real
data: the shared smoke-profile graph (A), a run with other settings (B), then A again.
"""

import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from dagster import AssetKey, AssetSelection, DagsterInstance, materialize
from upath import UPath

from clustering_dag.cache import kept, listing, prune_cache
from clustering_dag.core.arrays import Splits
from clustering_dag.defs import keep as keep_module
from clustering_dag.defs.storage import AssetStorage, file_key, write_parquet
from clustering_dag.report import report
from clustering_dag.settings import PROJECT_ROOT
from clustering_dag_tests.conftest import GraphRun

THING = AssetKey(["paper", "thing"])


def _frame(value: float) -> pd.DataFrame:
    return pd.DataFrame({"x": [value, value + 1]})


def _make(storage: AssetStorage, key: str, value: float, run_id: str = "run") -> None:
    """What a step that computed ``value`` under ``key`` leaves: the current file, kept."""
    time.sleep(0.05)  # one value after the other, as the file system's clock tells them apart
    write_parquet(storage.path(THING, "mnist", "parquet"), pa.Table.from_pandas(_frame(value)), key)
    storage.keep(THING, "mnist", "parquet", key, {"run_id": run_id, "made_from": {}})


@pytest.mark.parametrize("base", ["local", "memory://kept"])
def test_a_kept_value_becomes_current_again_and_the_oldest_go_past_the_bound(tmp_path, base):
    storage = AssetStorage(base_path=str(tmp_path / "cache") if base == "local" else f"{base}-{os.getpid()}",
                           keep_versions=2)
    current = storage.path(THING, "mnist", "parquet")
    _make(storage, "aaaa", 1.0)
    _make(storage, "bbbb", 2.0)
    assert file_key(current, "parquet") == "bbbb"
    assert storage.reuse(THING, "mnist", "parquet", "aaaa")  # A again: no computing
    assert file_key(current, "parquet") == "aaaa"
    assert storage.load(THING, "mnist", "parquet", expect_key="aaaa")["x"].tolist() == [1.0, 2.0]
    assert not storage.reuse(THING, "mnist", "parquet", "cccc")  # never made
    _make(storage, "cccc", 3.0)  # a third value: two are kept, the least recently used goes
    entry = {e: found for e, (_, _, found) in kept(storage.root()).items()}["paper/thing/mnist"]
    assert [v.key for v in entry] == ["cccc", "aaaa"]
    assert [v.current for v in entry] == [True, False]
    assert entry[0].run_id == "run" and entry[0].record["partition"] == "mnist"
    if base == "local":  # the current file and its kept version are one file on disk
        version = storage.version(THING, "mnist", "parquet", "cccc")
        assert os.stat(current.path).st_ino == os.stat(version.path).st_ino


def test_a_kept_file_holding_another_value_is_not_made_current(tmp_path):
    storage = AssetStorage(base_path=str(tmp_path))
    _make(storage, "aaaa", 1.0)
    _make(storage, "bbbb", 2.0)
    forged = storage.version(THING, "mnist", "parquet", "cccc")
    forged.write_bytes(storage.version(THING, "mnist", "parquet", "aaaa").read_bytes())
    assert not storage.reuse(THING, "mnist", "parquet", "cccc")
    assert file_key(storage.path(THING, "mnist", "parquet"), "parquet") == "bbbb"


def test_a_kept_value_whose_content_is_damaged_is_not_made_current(tmp_path):
    storage = AssetStorage(base_path=str(tmp_path))
    _make(storage, "aaaa", 1.0)
    _make(storage, "bbbb", 2.0)
    version = Path(storage.version(THING, "mnist", "parquet", "aaaa").path)
    data = bytearray(version.read_bytes())
    data[10] ^= 0xFF  # the first data page; the footer (and the key in it) still reads
    version.write_bytes(bytes(data))
    assert file_key(UPath(version), "parquet") == "aaaa"
    assert not storage.reuse(THING, "mnist", "parquet", "aaaa")
    assert file_key(storage.path(THING, "mnist", "parquet"), "parquet") == "bbbb"


def test_a_value_replaced_before_it_is_kept_is_not_kept_under_the_wrong_key(tmp_path):
    storage = AssetStorage(base_path=str(tmp_path))
    _make(storage, "bbbb", 2.0)  # another writer's value is current when this one keeps "aaaa"
    version = storage.version(THING, "mnist", "parquet", "aaaa")
    keep_module.keep(storage.path(THING, "mnist", "parquet"), version, "aaaa", "parquet", {})
    assert not version.exists()


def test_the_cache_command_lists_a_cache_named_by_a_relative_path(tmp_path, monkeypatch, capsys):
    from clustering_dag.cache import main

    _make(AssetStorage(base_path=str(tmp_path / "c")), "aaaa", 1.0)
    monkeypatch.chdir(tmp_path)
    main(["--cache", "c", "list"])
    assert "paper/thing/mnist\n  aaaa " in capsys.readouterr().out


def test_prune_spares_the_current_value_the_protected_and_the_recent(tmp_path):
    storage = AssetStorage(base_path=str(tmp_path), keep_versions=10)
    for i, key in enumerate(["k1", "k2", "k3", "k4"]):
        _make(storage, key, float(i))
        os.utime(storage.version(THING, "mnist", "parquet", key).path, (1000 + i, 1000 + i))
    storage.reuse(THING, "mnist", "parquet", "k1")  # used now: the newest, and current
    found = kept(storage.root())["paper/thing/mnist"][2]
    assert [v.key for v in found] == ["k1", "k4", "k3", "k2"]
    assert [v.key for v in keep_module.to_remove(found, 1, grace=0)] == ["k4", "k3", "k2"]
    assert [v.key for v in keep_module.to_remove(found, 1, grace=0, protect={("paper/thing/mnist", "k3")})] \
        == ["k4", "k2"]
    assert [v.key for v in keep_module.to_remove(found, 2, grace=0)] == ["k3", "k2"]
    assert keep_module.to_remove(found, 1, grace=10 ** 12) == []  # all used "recently"
    removed = prune_cache(storage.root(), keep=1, grace=0)
    assert sorted(v.key for v in removed) == ["k2", "k3", "k4"]
    assert [v.key for v in kept(storage.root())["paper/thing/mnist"][2]] == ["k1"]
    assert storage.load(THING, "mnist", "parquet", expect_key="k1")["x"].tolist() == [0.0, 1.0]


def test_a_version_pruned_under_a_reuse_costs_a_recompute_not_a_value(tmp_path, monkeypatch):
    storage = AssetStorage(base_path=str(tmp_path))
    _make(storage, "aaaa", 1.0)
    _make(storage, "bbbb", 2.0)
    version = storage.version(THING, "mnist", "parquet", "aaaa")
    touched = keep_module.touch

    def pruned_meanwhile(path):  # prune removes the version between the check and the publish
        touched(path)
        os.unlink(version.path)

    monkeypatch.setattr(keep_module, "touch", pruned_meanwhile)
    assert not storage.reuse(THING, "mnist", "parquet", "aaaa")
    assert storage.load(THING, "mnist", "parquet", expect_key="bbbb")["x"].tolist() == [2.0, 3.0]


# --- the pipeline ----------------------------------------------------------------------------

PAPER_TABLES = AssetSelection.assets(AssetKey(["paper", "paper_comparison"])).upstream()


def _settings_b() -> dict:
    """The shared graph's smoke settings with the `paper` autoencoder trained one epoch less."""
    from clustering_dag_tests.conftest import graph_config

    config = copy.deepcopy(graph_config())
    names = {k.path[-1] if len(k.path) == 1 else "__".join(k.path)
             for k in PAPER_TABLES.resolve(_graph())}
    config = {"ops": {op: c for op, c in config["ops"].items() if op in names}}
    config["ops"]["paper__trained_vae"]["config"]["epochs"] -= 1
    return config


def _graph():
    from clustering_dag.definitions import defs

    return defs.resolve_asset_graph()


def _run(config: dict, instance, extra: dict | None = None) -> dict[str, bool]:
    from clustering_dag.definitions import all_assets, resources

    result = materialize(all_assets, selection=PAPER_TABLES, partition_key="mnist",
                         run_config={**config, **(extra or {})}, resources=resources, instance=instance)
    assert result.success
    _run.metadata = {e.asset_key.to_user_string(): e.materialization.metadata
                     for e in result.get_asset_materialization_events()}
    return {name: metadata["reused"].value for name, metadata in _run.metadata.items()}


def _paper_header(profile: str | None, graph: GraphRun) -> str:
    """The heading of the `paper` variant's table in `report` (of ``profile``'s run, if given)."""
    text = report(UPath(graph.cache), profile)
    return next(line for line in text.splitlines() if "variant `paper`" in line)


def _current_keys(cache: Path) -> dict[str, str]:
    storage = AssetStorage(base_path=str(cache))
    return {k.to_user_string(): storage.stored_key(k, "mnist") for k in PAPER_TABLES.resolve(_graph())}


@pytest.mark.slow
def test_settings_a_then_b_then_a_again_computes_nothing_the_third_time(graph_copy):
    from clustering_dag_tests.conftest import graph_config

    a_keys = _current_keys(graph_copy.cache)
    a_config = {"ops": {op: c for op, c in graph_config()["ops"].items() if op in _settings_b()["ops"]}}
    with DagsterInstance.from_config(str(graph_copy.home)) as instance:
        b = _run(_settings_b(), instance)
        assert not b["paper/trained_vae"] and b["raw_dataset"]  # B trains again; the data is the same
        # The UI says which settings each table comes from.
        assert "profile `custom`: 3,000 train / 500 test rows, 4 epochs" == \
            _run.metadata["paper/clustering_metrics"]["settings"].value
        b_keys = _current_keys(graph_copy.cache)
        assert b_keys["paper/paper_comparison"] != a_keys["paper/paper_comparison"]
        # `report` shows the current tables (B's), and A's by their profile: B hides nothing.
        assert "profile `custom`: 3,000 train / 500 test rows, 4 epochs" in _paper_header(None, graph_copy)
        assert "profile `smoke`: 3,000 train / 500 test rows, 5 epochs" in _paper_header("smoke", graph_copy)
        again = _run(a_config, instance)
    assert all(again.values()), [k for k, v in again.items() if not v]
    assert _current_keys(graph_copy.cache) == a_keys
    text = listing(UPath(graph_copy.cache), "paper/trained_vae")
    assert text.count("\n  ") == 2 and text.count("current") == 1  # A's and B's models, A's current


@pytest.mark.slow
def test_force_recomputes_and_replaces_the_value_only_when_the_step_succeeds(graph_copy, monkeypatch):
    from clustering_dag.core import chain
    from clustering_dag.definitions import all_assets, resources
    from clustering_dag.profiles import force

    clusters = AssetKey(["paper", "clusters_latent"])
    storage = AssetStorage(base_path=str(graph_copy.cache))
    path, key = storage.path(clusters, "mnist", "parquet"), storage.stored_key(clusters, "mnist")
    before = os.stat(path.path).st_ino
    config = {"ops": {"paper__clusters_latent": {"config": {"n_init": 1}}}}

    def run(extra=None):
        return materialize(all_assets, selection=[clusters], partition_key="mnist", resources=resources,
                           run_config={**config, **(extra or {})}, raise_on_error=False)

    with monkeypatch.context() as m:
        def flaky(*args, **kwargs):
            raise RuntimeError("a flaky host")

        m.setattr(chain, "fit_space", flaky)
        assert not run(force()).success
    assert os.stat(path.path).st_ino == before and file_key(path, "parquet") == key  # untouched
    assert run().get_asset_materialization_events()[0].materialization.metadata["reused"].value
    forced = run(force())
    assert forced.success
    assert not forced.get_asset_materialization_events()[0].materialization.metadata["reused"].value
    assert os.stat(path.path).st_ino != before and file_key(path, "parquet") == key  # rewritten, same key
    version = storage.version(clusters, "mnist", "parquet", key)
    assert os.stat(version.path).st_ino == os.stat(path.path).st_ino  # the kept value is the new one


@pytest.mark.slow
def test_pruning_while_a_run_writes_loses_nothing_the_run_needs(graph_copy, tmp_path):
    """A `dagster asset materialize` of settings B while `prune --keep 1 --grace 0` runs again and
    again: the run succeeds, its values are whole and current, a re-run reuses every one."""
    import json

    config = tmp_path / "b.yaml"
    config.write_text(json.dumps(_settings_b()))
    selection = "*paper/paper_comparison"
    dagster = str(Path(sys.executable).with_name("dagster"))
    log = tmp_path / "run.log"
    with log.open("w") as out:
        run = subprocess.Popen([dagster, "asset", "materialize", "-m", "clustering_dag.definitions",
                                "--select", selection, "--partition", "mnist", "-c", str(config)],
                               cwd=PROJECT_ROOT, env=os.environ.copy(), stdout=out, stderr=subprocess.STDOUT)
        prunes = 0
        while run.poll() is None:
            prune_cache(UPath(graph_copy.cache), keep=1, grace=0)
            prunes += 1
    assert run.returncode == 0, log.read_text()[-3000:]
    assert prunes > 1
    storage = AssetStorage(base_path=str(graph_copy.cache))
    for name, key in _current_keys(graph_copy.cache).items():
        asset = AssetKey.from_user_string(name)
        kind = "model" if storage.path(asset, "mnist", "model").exists() else "parquet"
        value = storage.load(asset, "mnist", kind, expect_key=key)
        if isinstance(value, Splits):
            assert np.isfinite(value.test_x).all()
    with DagsterInstance.from_config(str(graph_copy.home)) as instance:
        assert all(_run(_settings_b(), instance).values())
