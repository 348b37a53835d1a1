"""A server worker tunes its process once its app has started, when its settings say so
(``ServeConfig.tune_process``, which ``serve()`` sets): the collector, the GIL switch, thread pools."""

from __future__ import annotations

import subprocess
import sys

_APP = (
    "import gc, sys, tempfile; from starlette.testclient import TestClient; "
    "from modelport.client import Client; from modelport.config import Settings; "
    "from modelport.serving import create_app; "
    "from modelport.serving.app import GC_YOUNG_THRESHOLD as T, SWITCH_INTERVAL as S; "
    "home = tempfile.mkdtemp(); "
    "app = create_app(Client(Settings.from_env({'MODELPORT_HOME': home})), tune_process={tune}, "
    "eager=False, watch_interval=0, log_sample_rate=0.0); "
    "before = gc.get_freeze_count()\n"
    "with TestClient(app) as c: c.get('/healthz')\n"
    "print(before, gc.get_freeze_count() > 1000, gc.get_threshold()[0] == T, sys.getswitchinterval() == S)"
)


def _run(tune: bool) -> list[str]:
    code = _APP.replace("{tune}", str(tune))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_a_tuned_server_process_freezes_what_exists_and_collects_young_objects_less_often() -> None:
    assert _run(True) == ["0", "True", "True", "True"]


def test_an_app_built_without_the_setting_leaves_the_process_as_it_is() -> None:
    assert _run(False) == ["0", "False", "False", "False"]
