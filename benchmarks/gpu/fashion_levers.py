"""Benchmark (GPU machine): what moves the `dae` -> UMAP -> mixture chain's accuracy on
Fashion-MNIST's noisy test split, with everything else as the manifold stage does it.

    python benchmarks/gpu/fashion_levers.py      # FASHION_DIR: the four IDX .gz files; OUT: results
    QUICK=1 python benchmarks/gpu/fashion_levers.py   # 3,000/1,000 images, a smoke run on a CPU

The autoencoder is the `dae` variant's network (784-500-500-2000-10, ReLU, linear code, noisy
inputs to clean targets, squared error, Adam 1e-3, batch 256, Glorot-uniform weights), written in
PyTorch because the GPU machine this project is lent has PyTorch and no TensorFlow (and can install
nothing); three seeds train side by side as one batched network (independent weights and batch
orders), its codes taken after 10, 40 and 150 epochs. Then, in 15 worker processes, per code: UMAP
(10-d, `min_dist` 0, seeded, one thread) fitted on 20,000 training codes with 20 neighbours under
three seeds (the stage's restarts), with 10 and 50 neighbours, and on all 60,000 codes; each with
a full-covariance mixture (10 restarts) and k-means, scored on the 10,000 noisy test codes by
Hungarian accuracy. Then the stage's label-free choice among the three restarts, and self-labelling
from its mixture with the project's MLP and with a small CNN. Prints JSON lines (also to
$OUT/results.jsonl). docs/results.md has the numbers of 2026-12-04.
"""

import gzip
import json
import os
import struct
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

OUT = os.environ.get("OUT", "/tmp/expout")
QUICK = bool(os.environ.get("QUICK"))
os.makedirs(OUT, exist_ok=True)
LOG = open(os.path.join(OUT, "results.jsonl"), "a")
T0 = time.time()


def log(**kw):
    kw["t"] = round(time.time() - T0, 1)
    LOG.write(json.dumps(kw) + "\n")
    LOG.flush()
    print(json.dumps(kw), flush=True)


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def acc(y, p):
    from scipy.optimize import linear_sum_assignment

    k = max(y.max(), p.max()) + 1
    w = np.zeros((k, k), int)
    np.add.at(w, (p, y), 1)
    r, c = linear_sum_assignment(-w)
    return float(w[r, c].sum() / len(y))


def task(args):
    os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/numba_cache")
    import umap
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    name, key, train, test, test_y, fit_rows, nn, seed, row_seed = args
    t = time.time()
    rows = np.arange(len(train)) if fit_rows is None else np.sort(
        np.random.default_rng(row_seed).choice(len(train), fit_rows, replace=False))
    red = umap.UMAP(n_components=10, n_neighbors=nn, min_dist=0.0, random_state=seed,
                    transform_seed=seed, n_jobs=1)
    etr = red.fit_transform(train[rows]).astype(np.float32)
    ete = red.transform(test).astype(np.float32)
    t_umap = time.time() - t
    gmm = GaussianMixture(10, covariance_type="full", n_init=10, max_iter=500, reg_covar=1e-4,
                          random_state=seed).fit(etr)
    pte = gmm.predict(ete)
    post = gmm.predict_proba(etr)
    km = KMeans(10, n_init=10, random_state=seed).fit(etr)
    ktr = KMeans(10, n_init=3, random_state=seed).fit_predict(etr)
    return dict(name=name, key=key, fit_rows=fit_rows, nn=nn, seed=seed, t_umap=round(t_umap, 1),
                t_all=round(time.time() - t, 1), acc_gmm=acc(test_y, pte),
                acc_km=acc(test_y, km.predict(ete))), dict(rows=rows, ktr=ktr, post=post, pte=pte)


def train_dae(xn, xc, xt, seeds, epochs, snaps, batch=256):
    import torch

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    S, n = len(seeds), len(xn)
    sizes = [784, 500, 500, 2000, 10, 2000, 500, 500, 784]
    gen = torch.Generator().manual_seed(seeds[0])
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        lim = (6 / (a + b)) ** 0.5
        W = ((torch.rand(S, a, b, generator=gen) * 2 - 1) * lim).to(dev).requires_grad_()
        B = torch.zeros(S, 1, b, device=dev, requires_grad=True)
        layers.append((W, B))
    enc, dec = layers[:4], layers[4:]

    def mlp(x, ls):
        for i, (W, B) in enumerate(ls):
            x = torch.baddbmm(B, x, W)
            if i < len(ls) - 1:
                x = torch.relu(x)
        return x

    Xn = torch.tensor(xn, device=dev)
    Xc = torch.tensor(xc, device=dev)
    opt = torch.optim.Adam([p for wb in layers for p in wb], lr=1e-3, eps=1e-7)
    gens = [torch.Generator(device=dev).manual_seed(s) for s in seeds]
    snapshots, times = {}, []
    for epoch in range(1, epochs + 1):
        if dev == "cuda":
            torch.cuda.synchronize()
        t = time.time()
        perm = torch.stack([torch.randperm(n, generator=g, device=dev) for g in gens])
        for i in range(0, n, batch):
            ix = perm[:, i:i + batch]
            r = mlp(mlp(Xn[ix], enc), dec)
            loss = ((r - Xc[ix]) ** 2).mean(dim=(1, 2)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if dev == "cuda":
            torch.cuda.synchronize()
        times.append(time.time() - t)
        if epoch in snaps:
            with torch.no_grad():
                Xt = torch.tensor(xt, device=dev)
                snapshots[epoch] = (mlp(Xn.unsqueeze(0).expand(S, -1, -1).contiguous(), enc).cpu().numpy(),
                                    mlp(Xt.unsqueeze(0).expand(S, -1, -1).contiguous(), enc).cpu().numpy())
            log(stage="dae", epoch=epoch, loss=float(loss) / S, s_per_epoch=float(np.median(times)))
    return snapshots, times


def refine(xtr, xte, test_y, rows, post, kind, seed, epochs=10, share=0.8, rounds=2, thr=0.99):
    """Self-labelling: an MLP or a small CNN on the noisy pixels, trained on the mixture's most
    confident share of each cluster's fit rows, then on every row it predicts at >= thr."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(seed)
    lab = post.argmax(1)
    conf = post.max(1)
    keep = []
    for c in range(10):
        m = np.flatnonzero(lab == c)
        keep.extend(m[np.argsort(-conf[m])[: int(np.ceil(share * len(m)))]])
    tr_idx, tr_lab = rows[np.array(keep)], lab[np.array(keep)]
    Xtr = torch.tensor(xtr, device=dev)
    Xte = torch.tensor(xte, device=dev)

    def net():
        if kind == "mlp":
            return nn.Sequential(nn.Linear(784, 500), nn.ReLU(), nn.Linear(500, 500), nn.ReLU(),
                                 nn.Linear(500, 10)).to(dev)
        return nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(64 * 49, 256), nn.ReLU(), nn.Linear(256, 10)).to(dev)

    def augment(x):
        img = x.view(-1, 1, 28, 28)
        dx, dy = np.random.randint(-3, 4, 2)
        img = torch.roll(img, shifts=(int(dy), int(dx)), dims=(2, 3))
        return img.reshape(-1, 784) + 0.05 * torch.randn_like(x)

    def predict(m, X):
        with torch.no_grad():
            return torch.cat([F.softmax(m(X[i:i + 4096]), 1) for i in range(0, len(X), 4096)]).cpu().numpy()

    res = {}
    for rnd in range(rounds):
        m = net()
        opt = torch.optim.Adam(m.parameters(), 1e-3)
        idx_t = torch.tensor(tr_idx, device=dev)
        lab_t = torch.tensor(tr_lab, device=dev)
        for _ in range(epochs):
            perm = torch.randperm(len(idx_t), device=dev)
            for i in range(0, len(perm), 256):
                b = perm[i:i + 256]
                loss = F.cross_entropy(m(augment(Xtr[idx_t[b]])), lab_t[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
        pte = predict(m, Xte).argmax(1)
        res[f"round{rnd + 1}"] = acc(test_y, pte)
        ptr = predict(m, Xtr)
        sure = np.flatnonzero(ptr.max(1) >= thr)
        tr_idx = np.union1d(sure, tr_idx)
        tr_lab = ptr[tr_idx].argmax(1)
    return res


def main():
    d = os.environ.get("FASHION_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    xtr = idx(f"{d}/train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255
    ytr = idx(f"{d}/train-labels-idx1-ubyte.gz").astype(np.int64)
    xte = idx(f"{d}/t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255
    yte = idx(f"{d}/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    if QUICK:
        xtr, ytr, xte, yte = xtr[:3000], ytr[:3000], xte[:1000], yte[:1000]
    rng = np.random.default_rng(0)
    ntr = (xtr + rng.normal(0, 0.05, xtr.shape)).astype(np.float32)
    nte = (xte + rng.normal(0, 0.05, xte.shape)).astype(np.float32)
    seeds = [1234, 1, 2]
    snaps = [2, 3] if QUICK else [10, 40, 150]
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    import multiprocessing as mp
    workers = 2 if QUICK else 15
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
    # warm the workers' numba kernels while the autoencoders train
    warm = [pool.submit(task, ("warm", "warm", np.random.rand(5000, 10).astype(np.float32),
                               np.random.rand(100, 10).astype(np.float32), np.arange(100) % 10,
                               None, 10, i, i)) for i in range(workers)]
    # one seed alone: the GPU's seconds per epoch for one autoencoder, as the product trains it
    _, t1 = train_dae(ntr, xtr, nte, [1234], 3, [])
    log(stage="dae_alone", s_per_epoch=[round(t, 3) for t in t1])
    codes, _ = train_dae(ntr, xtr, nte, seeds, max(snaps), snaps)
    for w in warm:
        try:
            w.result()
        except Exception as error:  # noqa: BLE001
            log(stage="warm_error", error=repr(error))
    log(stage="warm_done")
    fr = 1000 if QUICK else 20000
    jobs = []
    for e in snaps:
        for s in seeds:
            jobs.append(("full", f"e{e}_s{s}", None, 20, s))
            for r in range(3):
                jobs.append(("base", f"e{e}_s{s}", fr, 20, s + r))
            jobs.append(("nn10", f"e{e}_s{s}", fr, 10, s))
            jobs.append(("nn50", f"e{e}_s{s}", fr, 50, s))
    futures = []
    for name, key, fit_rows, nn_, seed in jobs:
        e, s = key[1:].split("_s")
        i = seeds.index(int(s))
        tr, te = codes[int(e)][0][i], codes[int(e)][1][i]
        futures.append(pool.submit(task, (name, key, tr, te, yte, fit_rows, nn_, seed, int(s))))
    base = {}
    for f in futures:
        try:
            r, extra = f.result()
        except Exception as error:  # noqa: BLE001
            log(stage="task_error", error=repr(error))
            continue
        log(stage="umap", **r)
        if r["name"] == "base":
            base.setdefault(r["key"], []).append((r, extra))
    # the product's choice among the 3 base restarts: most agreement between their k-means (labels unseen)
    from sklearn.metrics import adjusted_rand_score
    for key, rs in sorted(base.items()):
        if len(rs) < 2:
            continue
        parts = [x["ktr"] for _, x in rs]
        ag = [np.mean([adjusted_rand_score(parts[a], parts[b]) for b in range(len(parts)) if b != a])
              for a in range(len(parts))]
        best = int(np.argmax(ag))
        r, x = rs[best]
        log(stage="consensus", key=key, chosen_seed=r["seed"], acc_gmm=r["acc_gmm"],
            all=[q["acc_gmm"] for q, _ in rs], agreement=[round(a, 3) for a in ag])
        if key.startswith(f"e{snaps[0]}_"):
            for kind in ("mlp", "cnn"):
                t = time.time()
                try:
                    res = refine(ntr, nte, yte, x["rows"], x["post"], kind, r["seed"])
                    log(stage="refine", key=key, kind=kind, s=round(time.time() - t, 1), **res)
                except Exception as error:  # noqa: BLE001
                    log(stage="refine_error", kind=kind, error=repr(error))
    log(stage="done")


if __name__ == "__main__":
    sys.exit(main())
