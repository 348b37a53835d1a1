"""bench_serving.py's "native protocol ≥ the bare app" lines measured again with modelport and the bare
app running side by side, alternating line by line for ``BENCH_REMATCH_ROUNDS`` rounds (default 1;
0 in quick mode).

On a shared 2-core box the load drifts over a run of minutes, and the two systems' sweeps ran minutes
apart: one may have met a busy minute, the other a quiet one. Alternating gives both the same
conditions; each keeps its best measurement (``best`` in bench_serving.py picks it).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _serving_procs import free_port, server

ROUNDS = int(os.environ.get("BENCH_REMATCH_ROUNDS", "0" if os.environ.get("BENCH_QUICK") == "1" else "1"))
CONCS = (1, 16)  # the goal's concurrencies


def rematch(
    models: dict[str, Any],
    names: list[str],
    logdir: Path,
    modelport_cmd: Callable[[str, int], list[str]],
    bare_cmd: Callable[[int], list[str]],
    measure: Callable[[str, str, int, str, int], Any],
) -> None:
    """For each model of ``names``: start modelport (``modelport_cmd(model, port)``) and the bare app on
    its ONNX file, then ``measure(system, model, port, path, conc)`` each in turn, ROUNDS times."""
    if ROUNDS <= 0:
        return
    for model in names:
        if models[model]["onnx"] is None:
            continue
        with contextlib.ExitStack() as stack:
            mp_port, bare_port = free_port(), free_port()
            stack.enter_context(
                server("modelport-rematch", modelport_cmd(model, mp_port), "/readyz", mp_port, {}, logdir)
            )
            env = {"BARE_ONNX": str(models[model]["onnx"])}
            stack.enter_context(
                server("bare-rematch", bare_cmd(bare_port), "/health", bare_port, env, logdir)
            )
            for _ in range(ROUNDS):
                for conc in CONCS:
                    measure("modelport", model, mp_port, f"/models/{model}/predict", conc)
                    measure("bare", model, bare_port, "/predict", conc)
