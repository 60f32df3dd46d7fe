"""The aggregation rules of lib/aggregation/ written the usual numpy way, for bench/aggregation.ts.

Usage: python3 aggregation_numpy.py FILE N D RULE[,RULE...] [--runs R] [--budget SECONDS] [--min-total SECONDS] [--max-runs M]
FILE holds the N x D update matrix as raw little-endian float32 (row i = update i, already in
canonical order); the sample counts are 10 + (i % 90). Prints one JSON object mapping each rule
to {"seconds": median, "runs": count}, in CPU time (time.process_time), as the TypeScript side measures. Runs stop after R runs or once a rule has used BUDGET seconds,
but continue (up to M runs) while they add up to under MIN-TOTAL seconds, as on the TypeScript side.
"""
import json
import sys
import time

import numpy as np


def fedavg(a, w, f):
    return np.average(a, axis=0, weights=w)


def median(a, w, f):
    return np.median(a, axis=0)


def trimmed_mean(a, w, f):
    n = a.shape[0]
    trim = int(0.2 * n)
    part = np.partition(a, [trim, n - trim - 1], axis=0)
    return part[trim : n - trim].mean(axis=0)


def naive_distances(a):
    """The common implementation: a full matrix, one np.linalg.norm call per ordered pair."""
    n = a.shape[0]
    dist = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                dist[i, j] = np.linalg.norm(a[i] - a[j]) ** 2
    return dist


def krum_scores(dist, f):
    n = dist.shape[0]
    nearest = n - f - 2
    return np.array([np.sort(np.delete(dist[i], i))[:nearest].sum() for i in range(n)])


def krum(a, w, f):
    return a[np.argmin(krum_scores(naive_distances(a), f))]


def multi_krum(a, w, f):
    m = a.shape[0] - f
    return a[np.argsort(krum_scores(naive_distances(a), f), kind="stable")[:m]].mean(axis=0)


def bulyan(a, w, f):
    n = a.shape[0]
    dist = naive_distances(a)
    remaining = list(range(n))
    picked = []
    theta, beta = n - 2 * f, n - 4 * f
    while len(picked) < theta:
        sub = dist[np.ix_(remaining, remaining)]
        nearest = max(1, len(remaining) - f - 2)
        scores = [np.sort(np.delete(sub[q], q))[:nearest].sum() for q in range(len(remaining))]
        picked.append(remaining.pop(int(np.argmin(scores))))
    sel = a[sorted(picked)]
    med = np.median(sel, axis=0)
    closest = np.argsort(np.abs(sel - med), axis=0, kind="stable")[:beta]
    return np.take_along_axis(sel, closest, axis=0).mean(axis=0)


def geometric_median(a, w, f, iterations=10, nu=1e-6):
    z = a.mean(axis=0, dtype=np.float64)
    for _ in range(iterations):
        b = 1.0 / np.maximum(nu, np.linalg.norm(a - z, axis=1))
        z = (b @ a) / b.sum()
    return z


def norm_clipping(a, w, f):
    norms = np.linalg.norm(a, axis=1)
    factor = np.minimum(1.0, np.median(norms) / norms)
    return ((w * factor) @ a) / w.sum()


def fltrust(a, w, f, server=None):
    s = a.mean(axis=0)
    norms = np.linalg.norm(a, axis=1)
    trust = np.maximum(0.0, (a @ s) / (norms * np.linalg.norm(s)))
    return ((trust * np.linalg.norm(s) / norms) @ a) / trust.sum()


RULES = {
    "fedavg": fedavg,
    "median": median,
    "trimmed-mean": trimmed_mean,
    "krum": krum,
    "multi-krum": multi_krum,
    "bulyan": bulyan,
    "geometric-median": geometric_median,
    "norm-clipping": norm_clipping,
    "fltrust": fltrust,
    "naive-distances": lambda a, w, f: naive_distances(a),
}


def main():
    path, n, d, names = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(",")
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3
    budget = float(sys.argv[sys.argv.index("--budget") + 1]) if "--budget" in sys.argv else 20.0
    min_total = float(sys.argv[sys.argv.index("--min-total") + 1]) if "--min-total" in sys.argv else 0.0
    max_runs = int(sys.argv[sys.argv.index("--max-runs") + 1]) if "--max-runs" in sys.argv else runs
    a = np.fromfile(path, dtype="<f4").reshape(n, d)
    w = np.array([10 + (i % 90) for i in range(n)], dtype=np.float64)
    f = max(0, (n - 3) // 4)
    out = {}
    for name in names:
        times = []
        # Like the TypeScript side: a cheap first call (under 2 s) is a warm-up, not counted.
        start = time.process_time()
        RULES[name](a, w, f)
        first = time.process_time() - start
        if first >= 2.0:
            times.append(first)
        while (len(times) < runs and sum(times) < budget) or (sum(times) < min_total and len(times) < max_runs):
            start = time.process_time()
            RULES[name](a, w, f)
            times.append(time.process_time() - start)
        out[name] = {"seconds": float(np.median(times)), "runs": len(times)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
