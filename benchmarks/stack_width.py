"""A script: a stack's cost per member against its width K, in one process (one thread), to
choose the default width per device and workload (``clrbench.suite.devices.STACK_WIDTHS``).

Each width trains a stack of K constant-rate runs of several seeds twice; the second (the
compiled epoch already traced, as a worker's second stack of that shape) is timed. Prints, per
K, seconds per member, the members' training share, and GFLOP/s of the dense layers' products
(forward and backward: 3 x 2 x batch x sum of in x out per member step):

    python benchmarks/stack_width.py mnist1d-mlp 10 4,8,16,32,64

``gemm MODEL K`` prints instead the GEMM rate (GFLOP/s, one thread) of that model's stacked
products at width K (each Dense layer's forward ``(K, b, in) @ (K, in, out)`` and its two
backward products), the ceiling for a stack's training:

    python benchmarks/stack_width.py gemm mlp-100-100 32
"""

from __future__ import annotations

import sys
import time


def flops_per_step(layers: list[tuple[int, int]], batch: int) -> float:
    """Forward (2·b·in·out) plus the two backward products, per Dense layer."""
    return 3 * 2 * batch * sum(i * o for i, o in layers)


def main(workload: str, epochs: int, widths: list[int]) -> None:
    from clrbench.config.runs import RunSpec
    from clrbench.config.workloads import named
    from clrbench.schedules import make
    from clrbench.train.stacked import train_stack

    work = named(workload).workload(epochs=epochs)
    for width in widths:
        specs = [
            RunSpec(f"c{i}", make("constant", lr=0.05 * (1 + i / width)), i % 5, work).stacked()
            for i in range(width)
        ]
        train_stack(specs)
        t0 = time.perf_counter()
        members = train_stack(specs)
        wall = time.perf_counter() - t0
        steps = len(members[0].batches)
        model = members[0].info["stack"]
        dims = DIMS[work.model]
        gflops = flops_per_step(list(zip(dims[:-1], dims[1:], strict=True)), work.batch_size)
        rate = gflops * steps * width / sum(m.train_s for m in members) / 1e9
        print(
            f"{workload} K={width:3d}: {wall / width:.3f} s per member "
            f"(training share {members[0].train_s:.3f} s, {steps} steps), "
            f"{rate:.1f} GFLOP/s in training (stack of {model['size']})",
            flush=True,
        )


def gemm(model: str, width: int, batch: int = 128, repeats: int = 200) -> float:
    """GFLOP/s of the stacked products of ``model``'s Dense layers at ``width`` members."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    dims = DIMS[model]
    layers = list(zip(dims[:-1], dims[1:], strict=True))
    x = [tf.random.normal([width, batch, i]) for i, _ in layers]
    w = [tf.random.normal([width, i, o]) for i, o in layers]
    dy = [tf.random.normal([width, batch, o]) for _, o in layers]

    @tf.function
    def products():
        total = tf.constant(0.0)
        for _ in tf.range(repeats):
            for xi, wi, gi in zip(x, w, dy, strict=True):
                total += tf.matmul(xi + total, wi)[0, 0, 0]  # forward
                total += tf.matmul(xi, gi + total, transpose_a=True)[0, 0, 0]  # dW
                total += tf.matmul(gi + total, wi, transpose_b=True)[0, 0, 0]  # dx
        return total

    products()
    t0 = time.perf_counter()
    products()
    seconds = time.perf_counter() - t0
    return flops_per_step(layers, batch) * width * repeats / seconds / 1e9


DIMS = {"mlp-100-100": [40, 100, 100, 10], "dense-512": [784, 512, 10]}

if __name__ == "__main__":
    if sys.argv[1] == "gemm":
        print(f"{gemm(sys.argv[2], int(sys.argv[3])):.2f}")
    else:
        name, epochs, widths = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        main(name, epochs, [int(w) for w in widths.split(",")])
