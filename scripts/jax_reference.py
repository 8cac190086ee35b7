#!/usr/bin/env python3
"""Dev-only: the same VGG-16 CIFAR-form forward in JAX (jit, CPU), for a side-by-side
latency reference. JAX is not a prunebench dependency; install it in a throwaway venv:

    python3 -m venv /tmp/jaxenv && /tmp/jaxenv/bin/pip install jax
    /tmp/jaxenv/bin/python scripts/jax_reference.py --width 1.0,0.5 --batch 1,32

Same network as `prunebench latency`: NHWC, HWIO kernels, BN folded into the conv
(kernel and bias), ReLU, 2x2 max-pools after convs 1, 3, 6, 9, 12, head 512w -> 10.
Prints one CSV line per (width, batch): p50 and min of execute-and-wait in ms.
"""
import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

CH = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
POOL = {1, 3, 6, 9, 12}


def params(width, cin, seed=0):
    rng = np.random.default_rng(seed)
    ps, c = [], cin
    for o in CH:
        o = max(1, round(o * width))
        k = rng.normal(0, (2 / (9 * c)) ** 0.5, (3, 3, c, o)).astype(np.float32)
        ps.append((jnp.asarray(k), jnp.zeros(o, jnp.float32)))
        c = o
    w = rng.normal(0, (1 / c) ** 0.5, (c, 10)).astype(np.float32)
    return ps, (jnp.asarray(w), jnp.zeros(10, jnp.float32))


def forward(ps, head, x):
    for i, (k, b) in enumerate(ps):
        x = jax.lax.conv_general_dilated(x, k, (1, 1), ((1, 1), (1, 1)),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        x = jnp.maximum(x + b, 0)
        if i in POOL:
            x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    x = x.reshape(x.shape[0], -1)
    return x @ head[0] + head[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", default="1.0,0.5")
    ap.add_argument("--batch", default="1,32")
    ap.add_argument("--min-iters", type=int, default=10)
    ap.add_argument("--min-seconds", type=float, default=2.0)
    a = ap.parse_args()
    f = jax.jit(forward)
    print(f"# jax {jax.__version__} devices {jax.devices()}")
    print("width,batch,p50_ms,min_ms,samples")
    for w in map(float, a.width.split(",")):
        ps, head = params(w, 3)
        for bsz in map(int, a.batch.split(",")):
            x = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (bsz, 32, 32, 3)).astype(np.float32))
            for _ in range(3):
                f(ps, head, x).block_until_ready()
            s, t0 = [], time.perf_counter()
            while len(s) < a.min_iters or time.perf_counter() - t0 < a.min_seconds:
                t = time.perf_counter()
                f(ps, head, x).block_until_ready()
                s.append(time.perf_counter() - t)
            print(f"{w},{bsz},{statistics.median(s) * 1e3:.3f},{min(s) * 1e3:.3f},{len(s)}", flush=True)


if __name__ == "__main__":
    main()
