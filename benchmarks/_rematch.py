"""bench_serving.py's goal lines measured again with modelport and the bare app running side by side,
alternating line by line for ``BENCH_REMATCH_ROUNDS`` rounds (default 2).

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

ROUNDS = int(os.environ.get("BENCH_REMATCH_ROUNDS", "2"))
# (model, rows per request, concurrency): the lines the goals compare
LINES = (("credit", 1, 1), ("credit", 1, 16), ("credit", 1, 64), ("credit", 100, 16), ("mlp", 100, 16))


def rematch(
    models: dict[str, Any],
    logdir: Path,
    modelport_cmd: Callable[[int], list[str]],
    bare_cmd: Callable[[int], list[str]],
    measure: Callable[[str, str, str, int, str, int, int], Any],
    configs: tuple[str, str],
) -> None:
    """Start modelport (serving every model) and one bare server per model, then measure LINES on
    each in turn; ``configs`` are the labels of modelport's and the bare app's results."""
    mp_config, bare_config = configs
    with contextlib.ExitStack() as stack:
        mp_port = free_port()
        stack.enter_context(server("modelport", modelport_cmd(mp_port), "/readyz", mp_port, {}, logdir))
        bare_ports = {}
        for model in dict.fromkeys(m for m, _, _ in LINES):
            if models[model]["onnx"] is None:
                continue
            port = bare_ports[model] = free_port()
            env = {"BARE_ONNX": str(models[model]["onnx"])}
            stack.enter_context(server("bare", bare_cmd(port), "/health", port, env, logdir))
        for _ in range(ROUNDS):
            for model, rows, conc in LINES:
                if model not in bare_ports:
                    continue
                measure("modelport", mp_config, model, mp_port, f"/models/{model}/predict", rows, conc)
                measure("bare", bare_config, model, bare_ports[model], "/predict", rows, conc)
