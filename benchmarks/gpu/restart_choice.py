"""Benchmark (GPU machine): can a label-free choice among the manifold stage's UMAP restarts, or
a vote of them, lift Fashion-MNIST's accuracy, and how far would the best restart go?

    python benchmarks/gpu/restart_choice.py      # as fashion_levers.py: FASHION_DIR, OUT, QUICK

The `dae` network of fashion_levers.py (PyTorch, 3 seeds, 10 epochs), then 8 UMAP restarts per
seed on the same 20,000 fit rows (20 neighbours), each with a full-covariance mixture. For every
restart, its test accuracy and label-free scores: the mixture's log-likelihood and mean
posterior, silhouette in the UMAP space and in the code, Calinski-Harabasz and Davies-Bouldin in
the code, the smallest cluster's share. Per seed, the accuracy of the restart each criterion picks
among the first 3 and among all 8 (`agree_of_3` is the stage's own choice), of a vote of the
restarts' test clusters (aligned to the most agreeing restart's on the training rows), and of
the best restart by the labels (`max`, what no criterion can beat). Prints JSON lines.
"""

import os
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fashion_levers import acc, idx, log, train_dae  # noqa: E402

QUICK = bool(os.environ.get("QUICK"))
R = 3 if QUICK else 8


def task(args):
    os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/numba_cache")
    import umap
    from sklearn.cluster import KMeans
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
    from sklearn.mixture import GaussianMixture

    key, train, test, test_y, rows, seed = args
    red = umap.UMAP(n_components=10, n_neighbors=20, min_dist=0.0, random_state=seed,
                    transform_seed=seed, n_jobs=1)
    etr = red.fit_transform(train[rows]).astype(np.float32)
    ete = red.transform(test).astype(np.float32)
    gmm = GaussianMixture(10, covariance_type="full", n_init=10, max_iter=500, reg_covar=1e-4,
                          random_state=seed).fit(etr)
    ptr, pte = gmm.predict(etr), gmm.predict(ete)
    ktr = KMeans(10, n_init=3, random_state=seed).fit_predict(etr)
    code = train[rows]
    sub = np.random.default_rng(0).choice(len(rows), min(5000, len(rows)), replace=False)
    scores = dict(
        loglik=float(gmm.score(etr)),
        sil_embed=float(silhouette_score(etr[sub], ptr[sub])),
        sil_code=float(silhouette_score(code[sub], ptr[sub])),
        chs_code=float(calinski_harabasz_score(code, ptr)),
        dbi_code=float(davies_bouldin_score(code, ptr)),
        min_share=float(np.bincount(ptr, minlength=10).min() / len(ptr)),
        max_share=float(np.bincount(ptr, minlength=10).max() / len(ptr)),
        conf=float(gmm.predict_proba(etr).max(1).mean()))
    return dict(key=key, seed=seed, acc=acc(test_y, pte), **scores), dict(ptr=ptr, pte=pte, ktr=ktr)


def align(ref, p, k=10):
    from scipy.optimize import linear_sum_assignment

    w = np.zeros((k, k), int)
    np.add.at(w, (p, ref), 1)
    r, c = linear_sum_assignment(-w)
    m = np.empty(k, int)
    m[r] = c
    return m[p]


def agreement(parts):
    """Each partition's mean adjusted Rand index with the others (the stage's criterion)."""
    from sklearn.metrics import adjusted_rand_score

    n = len(parts)
    return [np.mean([adjusted_rand_score(parts[a], parts[b]) for b in range(n) if b != a]) for a in range(n)]


def main():
    d = os.environ.get("FASHION_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    xtr = idx(f"{d}/train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255
    xte = idx(f"{d}/t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255
    yte = idx(f"{d}/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    if QUICK:
        xtr, xte, yte = xtr[:3000], xte[:1000], yte[:1000]
    rng = np.random.default_rng(0)
    ntr = (xtr + rng.normal(0, 0.05, xtr.shape)).astype(np.float32)
    nte = (xte + rng.normal(0, 0.05, xte.shape)).astype(np.float32)
    seeds = [1234, 1, 2]
    E = 2 if QUICK else 10
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = "1"
    import multiprocessing as mp
    workers = 2 if QUICK else 15
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
    from fashion_levers import task as warm_task
    warm = [pool.submit(warm_task, ("warm", "warm", np.random.rand(5000, 10).astype(np.float32),
                                    np.random.rand(100, 10).astype(np.float32), np.arange(100) % 10,
                                    None, 10, i, i)) for i in range(workers)]
    codes, _ = train_dae(ntr, xtr, nte, seeds, E, [E])
    for w in warm:
        w.result()
    log(stage="warm_done")
    fr = 1000 if QUICK else 20000
    futures = []
    for i, s in enumerate(seeds):
        tr, te = codes[E][0][i], codes[E][1][i]
        rows = np.sort(np.random.default_rng(s).choice(len(tr), fr, replace=False))
        for r in range(R):
            futures.append(pool.submit(task, (f"s{s}", tr, te, yte, rows, s + r)))
    by = {}
    for f in futures:
        r, x = f.result()
        log(stage="restart", **r)
        by.setdefault(r["key"], []).append((r, x))
    summary = {}
    for key, rs in by.items():
        accs = np.array([r["acc"] for r, _ in rs])
        out = dict(mean=float(accs.mean()), max=float(accs.max()), min=float(accs.min()))
        for n in (3, R):
            ag = agreement([x["ktr"] for _, x in rs[:n]])
            out[f"agree_of_{n}"] = float(accs[int(np.argmax(ag))])
            ag2 = agreement([x["ptr"] for _, x in rs[:n]])
            out[f"agree_gmm_of_{n}"] = float(accs[int(np.argmax(ag2))])
            for crit, sign in (("loglik", 1), ("sil_embed", 1), ("sil_code", 1), ("chs_code", 1),
                               ("dbi_code", -1), ("min_share", 1), ("conf", 1)):
                v = [sign * r[crit] for r, _ in rs[:n]]
                out[f"{crit}_of_{n}"] = float(accs[int(np.argmax(v))])
            # ensemble: every restart's test clusters aligned (by their training clusters, no
            # labels) to the most agreeing one's, then a vote
            ref = int(np.argmax(ag2))
            votes = np.zeros((len(yte), 10), int)
            for j in range(n):
                m = align(rs[ref][1]["ptr"], rs[j][1]["ptr"])
                mapping = {int(a): int(b) for a, b in zip(rs[j][1]["ptr"], m)}
                pte = np.array([mapping.get(int(v), int(v)) for v in rs[j][1]["pte"]])
                votes[np.arange(len(yte)), pte] += 1
            out[f"vote_of_{n}"] = acc(yte, votes.argmax(1))
        summary[key] = out
        log(stage="summary", key=key, **out)
    keys = list(next(iter(summary.values())).keys())
    log(stage="mean_over_seeds",
        **{k: round(float(np.mean([s[k] for s in summary.values()])), 4) for k in keys})
    log(stage="done")


if __name__ == "__main__":
    sys.exit(main())
