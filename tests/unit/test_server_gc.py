"""A server worker tunes the garbage collector once its app has started (serving.app._tune_gc)."""

from __future__ import annotations

import subprocess
import sys


def test_a_server_process_freezes_what_exists_and_collects_young_objects_less_often() -> None:
    code = (
        "import gc; from modelport.serving.app import _tune_gc, GC_YOUNG_THRESHOLD as T; "
        "before = gc.get_freeze_count(); _tune_gc(); "
        "print(before, gc.get_freeze_count() > 1000, gc.get_threshold()[0] == T)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "True", "True"]


def test_serve_marks_its_processes_as_server_workers() -> None:
    """serve() sets the variable the app's lifespan looks for (worker processes inherit it)."""
    import inspect

    from modelport.serving import serve
    from modelport.serving.app import ENV_SERVER_PROCESS

    assert (
        "ENV_SERVER_PROCESS" in inspect.getsource(serve) and ENV_SERVER_PROCESS == "MODELPORT_SERVER_PROCESS"
    )
