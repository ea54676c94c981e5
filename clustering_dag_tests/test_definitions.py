"""The code location loads: jobs, the schedule, automation conditions and profiles."""

from datetime import UTC, datetime

import yaml
from dagster import AssetKey, DagsterInstance, build_schedule_context

from clustering_dag.core.variants import VARIANTS
from clustering_dag.definitions import defs
from clustering_dag.profiles import PROFILES, profile_path, quick


def test_jobs_resolve_over_the_whole_graph():
    every = set(defs.resolve_all_asset_keys())
    for name in ("paper_run", "quick_run", "parallel_quick_run"):
        job = defs.resolve_job_def(name)
        assert job.partitions_def.get_partition_keys() == ["mnist", "fashion_mnist"]
        assert set(job.asset_layer.executable_asset_keys) == every
    assert defs.resolve_job_def("parallel_quick_run").executor_def.name == "multiprocess"
    assert defs.resolve_job_def("parallel_quick_run").run_config_schema
    assert defs.resolve_job_def("quick_run").run_config_schema  # carries the quick profile


def test_weekly_schedule_is_off_and_requests_every_dataset():
    sched = defs.resolve_schedule_def("weekly_paper_run")
    assert sched.cron_schedule == "0 3 * * 1"
    assert sched.default_status.value == "STOPPED"
    with DagsterInstance.ephemeral() as instance:
        context = build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 11, 23, 3, tzinfo=UTC),
            repository_def=defs.get_repository_def())
        requests = list(sched.evaluate_tick(context).run_requests)
    assert [r.partition_key for r in requests] == ["mnist", "fashion_mnist"]
    assert [r.run_key for r in requests] == ["2026-11-23-mnist", "2026-11-23-fashion_mnist"]


def test_automation_follows_upstream_except_roots_and_training():
    graph = defs.resolve_asset_graph()
    conditions = {k.to_user_string(): graph.get(k).automation_condition for k in graph.get_all_asset_keys()}
    assert conditions["raw_dataset"] is None
    assert all(conditions[f"{v}/trained_vae"] is None for v in VARIANTS)
    assert conditions["trained_encoder"] is None  # training is decided by hand
    eager = {k for k, c in conditions.items() if c is not None}
    assert {"noisy_dataset", "paper/latent_representation", "paper/clustering_metrics",
            "elbo/figure_tsne", "dae/refined_classifier"} <= eager
    assert len(eager) == len(conditions) - 2 - len(VARIANTS)
    # eager(), triggered by a dependency's new data version instead of any new materialization
    labels = {c.get_label() for k, c in conditions.items() if c is not None}
    assert labels == {"eager_on_data_change"}
    condition = conditions["paper/clustering_metrics"]
    assert "any_deps_data_changed" in str(condition) and "any_deps_updated" not in str(condition)


def test_every_asset_has_a_code_version():
    graph = defs.resolve_asset_graph()
    missing = [k for k in graph.get_all_asset_keys() if not graph.get(k).code_version]
    assert missing == []
    assert graph.get(AssetKey(["paper", "trained_vae"])).group_name == "vae_paper"


def test_profiles_on_disk_match_code():
    for name, build in PROFILES.items():
        on_disk = yaml.safe_load(profile_path(name).read_text())
        assert on_disk == (build() or {"ops": {}}), "regenerate with python -m clustering_dag.profiles"


def test_quick_profile_names_real_ops():
    job = defs.resolve_implicit_global_asset_job_def()
    assert set(quick()["ops"]) <= {node.name for node in job.nodes}


def test_the_batches_location_reads_each_dataset_s_models():
    import yaml as _yaml

    from clustering_dag import batches
    from clustering_dag.settings import PROJECT_ROOT

    modules = [e["python_module"]["module_name"]
               for e in _yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())["load_from"]]
    assert modules == ["clustering_dag.definitions", "clustering_dag.batches"]
    graph = batches.defs.resolve_asset_graph()
    scored = graph.get(AssetKey(["dae", "scored_batch"]))
    assert scored.code_version and scored.group_name == "scoring_dae"
    assert {k.to_user_string() for k in scored.parent_keys} == {
        "raw_dataset", "clusters_original", "dae/clusters_reconstructed", "dae/clusters_latent",
        "dae/trained_vae", "dae/refined_classifier", "dae/test_scores", "trained_encoder",
        "clusters_invariant"}
    main = defs.resolve_asset_graph()
    for key in scored.parent_keys:  # the main location makes every one of them
        assert main.get(key).is_materializable and not graph.get(key).is_materializable
    assert sorted(scored.partitions_def.partitions_defs[0].partitions_def.get_partition_keys()) == \
        sorted(["mnist", "fashion_mnist"])
