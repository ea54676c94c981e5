"""End to end in a real browser: `dagster dev` on 127.0.0.1, headless Chromium (Debian's), the
asset graph with its lineage, a quick-profile run launched and seen to succeed, the unsynced
status after a real change, screenshots.

The server starts on a copy of the shared cold run (its cache and its instance's history), so the
quick run reuses every cached value and nothing is unsynced until a real change is made."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from dagster import AssetKey

from clustering_dag import batches
from clustering_dag.definitions import defs
from clustering_dag.defs.storage import AssetStorage
from clustering_dag.settings import PROJECT_ROOT
from clustering_dag_tests.conftest import graph_config

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [pytest.mark.browser, pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")]

# Screenshots go to a temporary folder; CLUSTERING_DAG_SCREENSHOT_DIR=docs refreshes the README's.
SHOTS = Path(os.environ.get("CLUSTERING_DAG_SCREENSHOT_DIR", "/tmp/clustering_dag_screenshots"))
BATCH = "test_split.npz"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(shared_graph, data_dir, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        copy = shared_graph.copy_to(tmp_path_factory.mktemp("ui"), mp)
    home = copy.home
    port = free_port()
    inbox = home.parent / "inbox"  # the noisy test split, dropped in as a batch of new images
    (inbox / "mnist").mkdir(parents=True)
    noisy = AssetStorage(base_path=str(copy.cache)).load(AssetKey("noisy_dataset"), "mnist", "parquet")
    np.savez(inbox / "mnist" / BATCH, x=noisy.test_x.reshape(-1, 28, 28))
    env = {**os.environ, "DAGSTER_HOME": str(home), "CLUSTERING_DAG_DATA_DIR": str(data_dir),
           "CLUSTERING_DAG_CACHE_DIR": str(copy.cache), "CLUSTERING_DAG_INBOX": str(inbox)}
    log = open(home / "dagster_dev.log", "w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster")), "dev", "-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/server_info", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    tail = (home / "dagster_dev.log").read_text()[-3000:]
                    raise RuntimeError(f"dagster dev did not start: {tail}") from None
                time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium fetch a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1600,1000", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def graphql(driver, query: str, variables: dict | None = None) -> dict:
    """Call the UI's own GraphQL API from inside the page, as its buttons do."""
    script = """
        const done = arguments[arguments.length - 1];
        fetch('/graphql', {method: 'POST', headers: {'Content-Type': 'application/json'},
                           body: JSON.stringify({query: arguments[0], variables: arguments[1]})})
          .then(r => r.json()).then(done).catch(e => done({error: String(e)}));
    """
    return driver.execute_async_script(script, query, variables or {})


def wait_for_text(driver, text: str, timeout: float) -> None:
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    while text not in driver.find_element(By.TAG_NAME, "body").text:
        if time.time() > deadline:
            raise AssertionError(f"{text!r} not shown within {timeout} s")
        time.sleep(1)


def dismiss_welcome(driver) -> None:
    from selenium.webdriver.common.by import By

    for button in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
        button.click()


def repository(driver, location: str) -> dict:
    """The selector of the code location ``location``'s repository."""
    repos = graphql(driver, "{ repositoriesOrError { ... on RepositoryConnection {"
                            " nodes { name location { name } } } } }")
    repo = next(r for r in repos["data"]["repositoriesOrError"]["nodes"] if r["location"]["name"] == location)
    return {"repositoryLocationName": location, "repositoryName": repo["name"]}


def launch(driver, job: str, run_config: dict, assets: list[list[str]] | None = None) -> str:
    """Launch a run of ``job`` (or of ``assets`` only) for mnist through the UI's GraphQL API."""
    selector = {**repository(driver, "clustering_dag.definitions"), "jobName": job}
    if assets:
        selector["assetSelection"] = [{"path": path} for path in assets]
    launched = graphql(driver, """
        mutation Launch($params: ExecutionParams!) {
          launchPipelineExecution(executionParams: $params) {
            __typename
            ... on LaunchRunSuccess { run { runId } }
            ... on PythonError { message }
            ... on RunConfigValidationInvalid { errors { message } }
          }
        }""", {"params": {"selector": selector, "runConfigData": json.dumps(run_config),
                          "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "mnist"}]}}})
    result = launched["data"]["launchPipelineExecution"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def wait_for_success(driver, server: str, run_id: str) -> None:
    driver.get(f"{server}/runs/{run_id}")
    wait_for_text(driver, "Success", 600)
    status = graphql(driver, "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }",
                     {"id": run_id})
    assert status["data"]["runOrError"]["status"] == "SUCCESS"


def unsynced(driver) -> set[str]:
    """What the UI reports as stale for mnist (its own stale-status field), in the main location."""
    keys = [{"path": key.path} for key in defs.resolve_asset_graph().get_all_asset_keys()]
    nodes = graphql(driver, 'query($keys: [AssetKeyInput!]) { assetNodes(assetKeys: $keys) { '
                            'assetKey { path } staleStatus(partition: "mnist") } }',
                    {"keys": keys})["data"]["assetNodes"]
    return {"/".join(n["assetKey"]["path"]) for n in nodes if n["staleStatus"] == "STALE"}


def test_asset_graph_run_and_screenshots(server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.set_script_timeout(60)
    browser.get(f"{server}/asset-groups")
    wait_for_text(browser, "Global asset lineage", 90)
    time.sleep(2)
    dismiss_welcome(browser)
    for group in ("data", "vae_paper", "vae_elbo", "clustering_paper", "figures_elbo"):
        wait_for_text(browser, group, 30)

    nodes = graphql(browser, "{ assetNodes { assetKey { path } dependencyKeys { path } } }")
    shown = {"/".join(n["assetKey"]["path"]): {"/".join(d["path"]) for d in n["dependencyKeys"]}
             for n in nodes["data"]["assetNodes"]}
    expected = {}
    for location in (defs, batches.defs):  # both code locations, the batches' models from the main one
        graph = location.resolve_asset_graph()
        expected.update({k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys}
                         for k in graph.get_all_asset_keys() if graph.get(k).is_materializable})
    assert shown == expected  # every asset, with its lineage
    browser.save_screenshot(str(SHOTS / "asset_graph.png"))

    # The quick profile over a cache that already holds it: every step reuses, nothing is unsynced.
    wait_for_success(browser, server, launch(browser, "quick_run", graph_config()))
    assert unsynced(browser) == set()

    # A real change (another k-means seed) to one asset: what depends on it is unsynced.
    km = graph_config()["ops"]["paper__clusters_latent"]["config"]
    wait_for_success(browser, server, launch(browser, "__ASSET_JOB", {
        "ops": {"paper__clusters_latent": {"config": {**km, "seed": 7}}}}, [["paper", "clusters_latent"]]))
    below = {"paper/cluster_assignments", "paper/clustering_metrics", "paper/seed_spread",
             "paper/test_scores",
             "paper/paper_comparison", "paper/figure_latent_centroids"}
    assert unsynced(browser) == below
    browser.get(f"{server}/assets/paper/cluster_assignments?view=partitions&partition=mnist")
    wait_for_text(browser, "Unsynced", 60)  # the partition's badge in the UI
    time.sleep(2)
    browser.save_screenshot(str(SHOTS / "unsynced.png"))

    browser.get(f"{server}/assets/paper/clustering_metrics?partition=mnist")
    wait_for_text(browser, "clustering_metrics", 60)
    time.sleep(3)
    dismiss_welcome(browser)
    browser.save_screenshot(str(SHOTS / "clustering_metrics.png"))
    browser.get(f"{server}/assets/paper/figure_voronoi?partition=mnist")
    wait_for_text(browser, "figure_voronoi", 60)
    time.sleep(3)
    browser.save_screenshot(str(SHOTS / "figure_asset.png"))

    # A file in the inbox: the sensor, switched on here as in the UI, adds it and scores it.
    started = graphql(browser, """
        mutation Start($sensor: SensorSelector!) { startSensor(sensorSelector: $sensor) { __typename } }""",
                      {"sensor": {**repository(browser, "clustering_dag.batches"),
                                  "sensorName": "inbox_sensor"}})
    assert started["data"]["startSensor"]["__typename"] == "Sensor", started
    partition = f"mnist|{BATCH}"
    runs_query = """query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) {
                      ... on Runs { results { runId status } } } }"""
    deadline, runs = time.time() + 300, []
    while not runs and time.time() < deadline:
        time.sleep(5)
        runs = graphql(browser, runs_query, {"tags": [{"key": "dagster/partition", "value": partition}]}
                       )["data"]["runsOrError"]["results"]
    assert runs, "the inbox sensor asked for no run within 300 s"
    wait_for_success(browser, server, runs[0]["runId"])
    browser.get(f"{server}/assets/dae/scored_batch?partition={urllib.parse.quote(partition)}")
    wait_for_text(browser, "cluster_counts", 60)
    wait_for_text(browser, "drift_shares", 10)
    time.sleep(3)
    browser.save_screenshot(str(SHOTS / "scored_batch.png"))
    for name in ("asset_graph", "unsynced", "clustering_metrics", "figure_asset", "scored_batch"):
        assert (SHOTS / f"{name}.png").stat().st_size > 20_000
