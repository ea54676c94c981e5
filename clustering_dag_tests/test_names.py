"""Names a user controls stay inside their folders: a batch file's name and its dataset's, a
partition key in the cache, a registered dataset's name. Hostile names through each way in (the
rule itself, the cache's layout, the inbox sensor's scan, the registry); the scored batches of a
hand-added partition are in test_scoring.py. Each test watches the folders: nothing is written
outside its root."""

import ast
from pathlib import Path

import numpy as np
import pytest
from dagster import AssetKey, build_sensor_context, instance_for_test

from clustering_dag.core.errors import DataError
from clustering_dag.core.paths import MAX_NAME, check_name, path_in
from clustering_dag.core.registry import load_registry
from clustering_dag.defs.storage import AssetStorage

# Every name refused, and what it tries.
HOSTILE = {
    "..": "the parent folder",
    ".": "the folder itself",
    "../../escape.npz": "'..' segments",
    "/etc/passwd": "an absolute path",
    "a/b.npz": "a separator",
    "a\\b.npz": "the other separator",
    "x" * 10_000: "a name of 10,000 characters",
    "x" * (MAX_NAME + 1): "one character too many",
    "a\x00b.npz": "a NUL byte",
    "a\nb.npz": "a newline",
    "batch.npz\n": "a trailing newline",
    "caf\u00e9.npz": "a non-ASCII letter (NFC)",
    "cafe\u0301.npz": "the same word in NFD: a look-alike",
    ".hidden.npz": "a leading dot",
    "": "nothing",
}


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("name", list(HOSTILE), ids=list(HOSTILE.values()))
def test_a_name_that_is_not_one_plain_component_is_refused_saying_why(tmp_path, name):
    before = files_under(tmp_path)
    with pytest.raises(DataError) as err:
        path_in(tmp_path, name, "batch file")
    text = str(err.value)
    assert text.startswith("batch file ") and str(tmp_path) in text and "one plain name" in text
    assert len(text) < 600  # a 10,000-character name is quoted short
    assert files_under(tmp_path) == before


def test_plain_names_differing_by_case_are_two_files(tmp_path):
    """On a case-sensitive disk they are two files; on a case-insensitive one they are one file,
    whose content keys the cache (the batch's SHA-256): no other batch's scores are served."""
    assert check_name("Batch.npz", "batch file", tmp_path) == "Batch.npz"
    assert path_in(tmp_path, "Batch.npz", "f") != path_in(tmp_path, "batch.npz", "f")
    assert path_in(tmp_path, "x" * MAX_NAME, "f").name == "x" * MAX_NAME


def test_a_link_out_of_the_folder_is_refused_and_one_inside_it_is_followed(tmp_path):
    inbox, outside = tmp_path / "inbox", tmp_path / "secret.npz"
    inbox.mkdir()
    outside.write_bytes(b"not yours")
    (inbox / "out.npz").symlink_to(outside)
    (inbox / "real.npz").write_bytes(b"yours")
    (inbox / "in.npz").symlink_to(inbox / "real.npz")
    with pytest.raises(DataError, match=r"leads outside .*inbox \(to .*secret\.npz\): a link out"):
        path_in(inbox, "out.npz", "batch file")
    assert path_in(inbox, "in.npz", "batch file").read_bytes() == b"yours"


@pytest.mark.parametrize("partition", ["mnist|../../escape.npz", "mnist|/etc/passwd", "../mnist",
                                       "mnist|a\x00b.npz", "mnist|" + "x" * 10_000],
                         ids=["dotdot", "absolute", "dataset dotdot", "NUL", "10,000 characters"])
def test_the_cache_refuses_a_partition_key_that_would_leave_its_folder(tmp_path, partition):
    storage = AssetStorage(base_path=str(tmp_path))
    with pytest.raises(DataError, match="partition key .* is refused in .*: a name there must be one plain"):
        storage.path(AssetKey(["dae", "scored_batch"]), partition, "parquet")
    with pytest.raises(DataError, match="refused"):
        storage.path(AssetKey(["dae", "figure_tsne"]), partition, "png", "tsne")


def test_the_cache_refuses_a_folder_linked_out_of_it(tmp_path):
    cache, elsewhere = tmp_path / "cache", tmp_path / "elsewhere"
    (cache / "dae" / "scored_batch").mkdir(parents=True)
    elsewhere.mkdir()
    (cache / "dae" / "scored_batch" / "mnist").symlink_to(elsewhere, target_is_directory=True)
    storage = AssetStorage(base_path=str(cache))
    with pytest.raises(DataError, match="leads outside"):
        storage.path(AssetKey(["dae", "scored_batch"]), "mnist|batch.npz", "parquet")
    assert storage.path(AssetKey(["dae", "scored_batch"]), "fashion_mnist|batch.npz", "parquet").name == \
        "batch.npz.parquet"


def test_the_sensor_skips_links_out_of_the_inbox_and_names_it(tmp_path, monkeypatch):
    from clustering_dag.batches import inbox_sensor, scan_inbox

    inbox, secret = tmp_path / "inbox", tmp_path / "secret"
    (inbox / "mnist").mkdir(parents=True)
    secret.mkdir()
    np.savez(secret / "theirs.npz", x=np.zeros((2, 784)))
    np.savez(inbox / "mnist" / "mine.npz", x=np.zeros((2, 784)))
    (inbox / "mnist" / "theirs.npz").symlink_to(secret / "theirs.npz")
    (inbox / "mnist" / "again.npz").symlink_to(inbox / "mnist" / "mine.npz")  # inside: a batch
    (inbox / "fashion_mnist").symlink_to(secret, target_is_directory=True)  # a dataset folder outside
    found, skipped = scan_inbox(inbox)
    assert sorted(found) == ["mnist/again.npz", "mnist/mine.npz"]
    assert any("theirs.npz leads outside" in s and "a link out of the folder is not followed" in s
               for s in skipped)
    assert any("fashion_mnist/theirs.npz leads outside" in s for s in skipped)

    monkeypatch.setenv("CLUSTERING_DAG_INBOX", str(inbox))
    with instance_for_test() as instance:
        context = build_sensor_context(instance=instance)
        result = inbox_sensor(context)
    requested = sorted(r.partition_key.keys_by_dimension["file"] for r in result.run_requests)
    assert requested == ["again.npz", "mine.npz"]


@pytest.mark.parametrize("name", ["../wine", "wine\n", "Wine", "a/b", "w" * 64, "caf\u00e9"],
                         ids=["dotdot", "trailing newline", "upper case", "separator", "64 characters",
                              "non-ASCII"])
def test_a_registered_dataset_s_name_is_a_plain_name(tmp_path, name):
    (tmp_path / "wine.csv").write_text("a,b\n1,2\n")
    (tmp_path / "datasets.yaml").write_text(f"datasets:\n  {name!r}: {{path: wine.csv}}\n".replace("'", '"'))
    with pytest.raises(DataError, match="names are lower-case letters, digits and '_'"):
        load_registry(tmp_path / "datasets.yaml")


# Every function of the package that makes a path under the cache or the inbox, or calls the
# one function that makes a path from a name: a new one must be looked at and added here.
PLACES = {
    "clustering_dag/batches.py": {"batch_path", "scan_inbox", "inbox_sensor"},
    # A value's current file and its kept versions (a cache key is a plain name too).
    "clustering_dag/defs/storage.py": {"AssetStorage.root", "AssetStorage.path", "AssetStorage.version"},
    "clustering_dag/defs/keep.py": {"entries"},  # the current file of a folder of kept versions found
    "clustering_dag/report.py": {"run"},  # the cache folder named on its command line
    "clustering_dag/cache.py": {"run"},  # the same
}
ROOTS = {"inbox_root", "cache_root", "joinpath", "path_in", "confined"}


def test_every_place_a_name_becomes_a_path_is_listed():
    package = Path(__file__).resolve().parent.parent / "clustering_dag"
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        rel = str(path.relative_to(package.parent))
        if rel in ("clustering_dag/settings.py", "clustering_dag/core/paths.py"):
            continue  # where the roots and the rule are defined
        tree = ast.parse(path.read_text())
        for owner, fn in _functions(tree):
            calls = {n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", None)
                     for n in ast.walk(fn) if isinstance(n, ast.Call)}
            if calls & ROOTS:
                found.setdefault(rel, set()).add(f"{owner}.{fn.name}" if owner else fn.name)
    found.pop("clustering_dag/defs/versioning.py", None)  # the package's own source files
    assert found == PLACES


def _functions(tree):
    """(class or None, function) for every function and method; the module's own statements as
    one function named ``<module>``."""
    body = [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    yield None, ast.FunctionDef(name="<module>", args=None, body=body, decorator_list=[])
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            yield None, node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    yield node.name, item

