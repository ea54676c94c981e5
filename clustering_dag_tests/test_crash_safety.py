"""A writer killed mid-write, or two writers at once, never leave a file a later run would trust."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from clustering_dag.core.arrays import Splits
from clustering_dag.defs.storage import file_key, read_parquet, write_parquet

WRITER = """
import sys, time, numpy as np, pyarrow as pa
from upath import UPath
from clustering_dag.core.arrays import Splits, splits_to_table
from clustering_dag.defs.storage import write_parquet
rows, key, slow = int(sys.argv[2]), sys.argv[3], sys.argv[4] == "slow"
x = np.random.default_rng(0).random((rows, 784), dtype=np.float32)
table = splits_to_table(Splits(x, None, x[:10], None))
if slow:  # write the table in many row groups, so a kill lands in the middle of the file
    import pyarrow.parquet as pq
    write_table = pq.ParquetWriter.write_table
    def slow_write(self, table, *args, **kwargs):
        for batch in table.to_batches(max_chunksize=500):
            write_table(self, pa.Table.from_batches([batch])); time.sleep(0.05)
    pq.ParquetWriter.write_table = slow_write  # what write_parquet calls
print("writing", flush=True)
write_parquet(UPath(sys.argv[1]), table, key)
print("done", flush=True)
"""


def spawn(path: Path, rows: int, key: str, slow: bool) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(rows), key,
                             "slow" if slow else "fast"], stdout=subprocess.PIPE, text=True)


def test_sigkill_during_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "asset" / "mnist.parquet"
    target.parent.mkdir()
    old = Splits(np.ones((5, 784), np.float32), None, np.ones((2, 784), np.float32), None)
    write_parquet(_upath(target), _table(old), "old-key")
    proc = spawn(target, 20_000, "new-key", slow=True)
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    value = read_parquet(_upath(target))  # still the old, complete file
    assert value.train_x.shape == (5, 784)
    assert file_key(_upath(target), "parquet") == "old-key"
    leftovers = [p for p in target.parent.iterdir() if p.name != "mnist.parquet"]
    assert leftovers and all(p.name.startswith(".tmp-") for p in leftovers)  # killed mid-write; hidden
    # The next write of this file clears what the killed writer left, once it is old enough that
    # no live writer can own it; a young temp file (another writer, still running) is kept.
    for p in leftovers:
        os.utime(p, (time.time() - 7200, time.time() - 7200))
    young = target.parent / ".tmp-0123-mnist.parquet"
    young.write_bytes(b"in progress")
    write_parquet(_upath(target), _table(old), "next-key")
    assert sorted(p.name for p in target.parent.iterdir()) == [young.name, "mnist.parquet"]


def test_two_writers_at_once_leave_one_valid_file(tmp_path):
    target = tmp_path / "asset" / "mnist.parquet"
    procs = [spawn(target, 5_000, "a", slow=False), spawn(target, 6_000, "b", slow=False)]
    for proc in procs:
        proc.communicate(timeout=120)
        assert proc.returncode == 0
    table = pq.read_table(target)
    key = file_key(_upath(target), "parquet")
    assert (key, table.num_rows) in {("a", 5_010), ("b", 6_010)}  # one whole result, not a mix
    assert [p.name for p in target.parent.iterdir()] == ["mnist.parquet"]


def _upath(path):
    from upath import UPath

    return UPath(path)


def _table(splits):
    from clustering_dag.core.arrays import splits_to_table

    return splits_to_table(splits)
