"""Exact divergence (trace of the Jacobian) cost for likelihoods: heatbath's exact divergence
against a per-dimension autograd loop computing the same trace, for a dense and a hollow MLP.

    .venv/bin/python benchmarks/bench_likelihood.py            # ~1 min on one core
    .venv/bin/python benchmarks/bench_likelihood.py --quick    # smoke run, < 1 min

Networks (both hidden 256, depth 4, untrained but with the output layer at PyTorch's default
scale, on the linear path with velocity prediction, evaluated through `Field.velocity`):

  dense MLP    heatbath's default vector network (`model.net = "mlp"`).
  hollow MLP   `model.net = "hollow"` (features 32): f_i = τ(x_i, h_i(x₋ᵢ)), whose Jacobian
               diagonal is one backward pass with the contexts h held fixed.

Contenders, each returning (u(x, t), tr ∂u/∂x) for a batch:

  heatbath exact_divergence   `heatbath.samplers.likelihood.exact_divergence` as it is in the tree: for
                              the dense MLP one forward pass, then one vmapped backward pass
                              over the D basis cotangents (`is_grads_batched`); for the hollow
                              MLP one forward and one backward pass (`hollow_divergence`).
  per-dimension loop          one forward pass, then D calls of
                              autograd.grad(u[:, i].sum(), x, retain_graph=True), keeping [:, i].
  vmapped on hollow           (hollow only) the dense route on the hollow network, to separate
                              what the structure gives from what batching gives.
  repeated batch (reference)  (dense only) heatbath's first implementation: the batch repeated
                              D times, one forward and one backward pass on B·D rows.

All are checked to give the same trace (torch.allclose) before timing, at t = 0.5 on standard
normal x. A second table times the whole `log_likelihood(..., method="exact")` with a fixed-step
Euler solver, once as is and once with the divergence swapped for the loop.
"""

from __future__ import annotations

import argparse
import contextlib
import time

from common import log, markdown_table, median_ms, pin_threads, time_calls, write_report

THREADS = pin_threads()

import torch  # noqa: E402

import heatbath.samplers.likelihood as likelihood  # noqa: E402
from heatbath.generative.field import Field  # noqa: E402
from heatbath.nets import build_net  # noqa: E402
from heatbath.nets.mlp import OUTPUT_INIT_SCALE  # noqa: E402
from heatbath.paths import build_path  # noqa: E402

HIDDEN, DEPTH, FEATURES, TIME = 256, 4, 32, 0.5
GOAL_DIM, GOAL_SPEEDUP = 64, 10.0
WHY = ("Why the dense MLP cannot reach it on a CPU: an exact trace of a dense network needs D "
       "vector-Jacobian products however it is batched (forward mode needs D Jacobian-vector "
       "products: the same matmul count). With one forward pass on B rows they cost about D "
       "input-gradient backward passes on B rows; the loop and heatbath's vmapped backward both "
       "do exactly that, and batching removes only the D Python-level autograd calls. On one "
       "CPU core the matmuls dominate at batch 256, so no batching can be ~10× faster there; it "
       "gains where per-call overhead dominates (small batches here, and GPUs, where D "
       "sequential small launches are latency-bound). The hollow MLP changes the arithmetic "
       "instead: its exact trace is one backward pass, not D.")


DEVICE = "cpu"   # set by --device


def _sync() -> None:
    """Wait for queued GPU work, so wall-clock timings measure it."""
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def make_field(network: str, dim: int) -> Field:
    if network == "dense MLP":
        net = build_net("mlp", (dim,), hidden=HIDDEN, depth=DEPTH, seed=0)
        head = net.output
    else:
        net = build_net("hollow", (dim,), hidden=HIDDEN, depth=DEPTH, features=FEATURES, seed=0)
        head = net.per_coordinate.output
    with torch.no_grad():   # undo the 0.1× head init so the Jacobian has a trained-like scale
        head.weight.div_(OUTPUT_INIT_SCALE)
        head.bias.div_(OUTPUT_INIT_SCALE)
    return Field(net.to(DEVICE), build_path("linear"), "velocity")


# --- the contenders --------------------------------------------------------------------------

def loop_divergence(field, x: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Trace by one autograd.grad call per dimension (the textbook FFJORD-style loop)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        velocity = field.velocity(x, t)
        flat = velocity.flatten(1)   # images too: coordinate i of the flattened event
        trace = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for i in range(flat.shape[1]):
            (grad,) = torch.autograd.grad(flat[:, i].sum(), x, retain_graph=True)
            trace = trace + grad.flatten(1)[:, i]
    return velocity.detach(), trace


def repeated_batch_divergence(field, x: torch.Tensor, t: float):
    """Trace from a batch holding D copies of each point: forward and backward on B·D rows."""
    batch, dim = x.shape
    basis = torch.eye(dim, dtype=x.dtype, device=x.device).repeat(batch, 1)   # (B·D, D)
    with torch.enable_grad():
        copies = x.detach().repeat_interleave(dim, dim=0).requires_grad_(True)
        velocity = field.velocity(copies, t)
        (grad,) = torch.autograd.grad((velocity * basis).sum(), copies)
    trace = (grad * basis).sum(1).reshape(batch, dim).sum(1)
    return velocity.detach()[::dim], trace


NETWORKS = ("dense MLP", "hollow MLP")
CONTENDERS = {
    "dense MLP": {"heatbath exact_divergence": likelihood.exact_divergence,
                  "per-dimension loop": loop_divergence,
                  "repeated batch (reference)": repeated_batch_divergence},
    "hollow MLP": {"heatbath exact_divergence": likelihood.exact_divergence,
                   "per-dimension loop": loop_divergence,
                   "vmapped on hollow": likelihood.vmapped_divergence},
}
BASELINE = "per-dimension loop"


# --- per-evaluation timing -------------------------------------------------------------------

def trace_gaps(field, x: torch.Tensor, contenders: dict) -> dict[str, float]:
    """Assert every contender's trace matches the loop's; return each one's largest difference."""
    _, reference = loop_divergence(field, x, TIME)
    tolerance = 1e-5 * (1.0 + float(reference.abs().max()))
    gaps = {}
    for name, divergence in contenders.items():
        _, trace = divergence(field, x, TIME)
        gaps[name] = float((trace - reference).abs().max())
        assert torch.allclose(trace, reference, rtol=1e-4, atol=tolerance), \
            f"{name} disagrees with the loop: max abs difference {gaps[name]}"
    return gaps


def time_case(network: str, dim: int, batch: int, repeats: int) -> list[list]:
    """[network, dim, batch, contender, median ms, speed-up vs the loop, max abs Δ trace] rows,
    numbers unformatted (`per_eval_cells` formats them for the table)."""
    field, contenders = make_field(network, dim), CONTENDERS[network]
    x = torch.randn(batch, dim, generator=torch.Generator().manual_seed(dim)).to(DEVICE)
    gaps = trace_gaps(field, x, contenders)   # also the warm-up call of every contender
    durations = {name: [] for name in contenders}
    for _ in range(repeats):   # round-robin, so a change in machine load hits every contender
        for name, divergence in contenders.items():
            durations[name] += time_calls(lambda: (divergence(field, x, TIME), _sync()), 1,
                                          warmup=0)
    medians = {name: median_ms(values) for name, values in durations.items()}
    log(f"  {network} dim {dim} batch {batch}: "
        + ", ".join(f"{n} {m:.1f} ms" for n, m in medians.items()))
    return [[network, dim, batch, name, ms, medians[BASELINE] / ms, gaps[name]]
            for name, ms in medians.items()]


def per_eval_cells(row: list) -> list:
    network, dim, batch, name, ms, speedup, gap = row
    return [network, dim, batch, name, f"{ms:.1f}", f"{speedup:.2f}×", f"{gap:.1e}"]


# --- whole log-likelihood with a fixed-step solver -------------------------------------------

@contextlib.contextmanager
def divergence_swapped(function):
    """Make log_likelihood use `function` for the exact trace (it looks the name up per call)."""
    original = likelihood.exact_divergence
    likelihood.exact_divergence = function
    try:
        yield
    finally:
        likelihood.exact_divergence = original


def time_log_likelihood(network: str, dim: int, batch: int, steps: int) -> list[list[str]]:
    field = make_field(network, dim)
    x = torch.randn(batch, dim, generator=torch.Generator().manual_seed(dim)).to(DEVICE)
    results = {}
    for name, function in (("heatbath exact_divergence", likelihood.exact_divergence),
                           (BASELINE, loop_divergence)):
        with divergence_swapped(function):
            likelihood.log_likelihood(field, x, method="exact", solver="euler", steps=1)  # warm-up
            started = time.perf_counter()
            result = likelihood.log_likelihood(field, x, method="exact", solver="euler",
                                               steps=steps)
            _sync()
            results[name] = (time.perf_counter() - started, result)
        log(f"  log_likelihood {network} dim {dim} {name}: {results[name][0]:.2f} s, "
            f"NFE {result.nfe}")
    reference = results[BASELINE][1].log_q
    rows = []
    for name, (seconds, result) in results.items():
        assert torch.allclose(result.log_q, reference, rtol=1e-5, atol=1e-3), name
        gap = float((result.log_q - reference).abs().max())
        rows.append([network, dim, batch, name, result.nfe, f"{seconds:.2f}",
                     f"{results[BASELINE][0] / seconds:.2f}×", f"{gap:.1e}"])
    return rows


def goal_line(rows: list[list], network: str, batch: int) -> str:
    """Verdict on the goal, from the unformatted rows of `time_case`."""
    speedup = next(r[5] for r in rows
                   if r[0] == network and r[1] == GOAL_DIM and r[2] == batch
                   and r[3] == "heatbath exact_divergence")
    verdict = "met" if speedup >= GOAL_SPEEDUP else "NOT met"
    return (f"Goal: heatbath ≥ {GOAL_SPEEDUP:.0f}× faster than the loop at dimension {GOAL_DIM} "
            f"(batch {batch}), {network}: measured {speedup:.2f}× → {verdict}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (< 1 min)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (a GPU row; table name "
                        "gets the device appended)")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    dims = (8, 64) if args.quick else (8, 32, 64)
    batches = (args.batch,) if args.quick else (args.batch, 16)
    repeats, ode_steps = (2, 2) if args.quick else (7, 8)

    rows = [row for network in NETWORKS for batch in batches for dim in dims
            for row in time_case(network, dim, batch, repeats)]
    ll_rows = [row for network in NETWORKS
               for row in time_log_likelihood(network, GOAL_DIM, args.batch, ode_steps)]
    per_eval = markdown_table(["network", "dim", "batch", "contender", "median ms / divergence",
                               "speed-up vs loop", "max abs Δ trace vs loop"],
                              [per_eval_cells(row) for row in rows])
    whole = markdown_table(["network", "dim", "batch", "divergence", "NFE", "seconds",
                            "speed-up vs loop", "max abs Δ log q vs loop"], ll_rows)
    setup = (f"heatbath MLPs hidden {HIDDEN}, depth {DEPTH} (hollow: features {FEATURES}); "
             f"float32 on {DEVICE}; median of {repeats} timed calls per contender, the "
             f"contenders called round-robin, after one warm-up call each (the trace check: "
             f"all traces asserted allclose to the loop's).")
    name = "bench_likelihood" if DEVICE == "cpu" else f"bench_likelihood_{DEVICE.split(':')[0]}"
    write_report(name, "Exact divergence cost", THREADS,
                 [setup, "Per divergence evaluation:", per_eval,
                  f"Whole `log_likelihood(method=\"exact\", solver=\"euler\", steps={ode_steps})`:",
                  whole, *(goal_line(rows, network, args.batch) for network in NETWORKS), WHY])


if __name__ == "__main__":
    main()
