"""Benchmark: what importing the code location costs, against importing Dagster alone.

    .venv/bin/python benchmarks/import_time.py [--repeats 7]

Every `dagster` CLI call, UI code-location reload and multiprocess-executor step imports
``clustering_dag.definitions``. Each import runs in a fresh interpreter; the two commands
alternate so that load on the machine falls on both alike. Prints JSON with the medians, their
ratio and which heavy libraries the import loaded. Target: ratio <= 1.5 and no heavy library.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

HEAVY = ["tensorflow", "tensorflow_probability", "tf_keras", "sklearn", "scipy", "matplotlib", "pandas",
         "pyarrow", "numpy", "h5py"]
TARGET_RATIO = 1.5


def seconds(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    seconds("import clustering_dag.definitions")  # warm the file cache and __pycache__
    dagster, definitions = [], []
    for _ in range(args.repeats):
        dagster.append(seconds("import dagster"))
        definitions.append(seconds("import clustering_dag.definitions"))
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, clustering_dag.definitions; "
                               f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"],
        check=True, capture_output=True, text=True).stdout.split()
    ratio = statistics.median(definitions) / statistics.median(dagster)
    print(json.dumps({
        "import_dagster_s": round(statistics.median(dagster), 3),
        "import_definitions_s": round(statistics.median(definitions), 3),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO and not loaded,
        "heavy_libraries_loaded": loaded,
        "repeats": args.repeats,
        "all_dagster_s": [round(s, 3) for s in dagster],
        "all_definitions_s": [round(s, 3) for s in definitions],
    }, indent=2))


if __name__ == "__main__":
    main()
