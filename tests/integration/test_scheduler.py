"""The job scheduler with real subprocesses: a fake clock drives ``tick``, the runs are real.

Each job file carries a ``script`` (Python source) that the ``command`` hook runs with the current
interpreter, since ``modelport batch run`` is not what is under test here.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelport.errors import InvalidInput
from modelport.scheduler import (
    KINDS,
    SKIPPED_STILL_RUNNING,
    Job,
    ScheduledRun,
    Scheduler,
    default_command,
    parse_job,
    register_kind,
)

T0 = datetime(2025, 1, 1, 12, 0, 30, tzinfo=UTC)


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2025, 1, 1, hour, minute, second, tzinfo=UTC)


def python(job: Job) -> list[str]:
    return [sys.executable, "-c", job.spec.get("script", "pass")]


def write_job(folder: Path, name: str, schedule: str, script: str = "pass", **extra: Any) -> Path:
    lines = [f"name: {name}", f'schedule: "{schedule}"', f"script: {json.dumps(script)}"]
    lines += [f"{key}: {json.dumps(value)}" for key, value in extra.items()]
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def runs(home: Path) -> list[dict[str, Any]]:
    path = home / "scheduler" / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    folder = tmp_path / "jobs"
    folder.mkdir()
    return folder


@pytest.fixture
def sched(jobs: Path, home: Path) -> Scheduler:
    return Scheduler(jobs, command=python)


def test_due_jobs_start_and_not_yet_due_do_not(sched: Scheduler, jobs: Path, home: Path) -> None:
    marker = jobs.parent / "scheduled_at.txt"
    script = (
        f"import os, pathlib; pathlib.Path({str(marker)!r}).write_text(os.environ['MODELPORT_SCHEDULED_AT'])"
    )
    write_job(jobs, "every-minute", "* * * * *", script)
    write_job(jobs, "hourly", "0 * * * *")
    (jobs / "serve.yaml").write_text("models: [credit]\n")  # no schedule: not a job, no error

    assert sched.tick(T0) == []  # jobs first seen now wait for their next firing
    assert sched.next_fires() == {"every-minute": at(12, 1), "hourly": at(13, 0)}
    assert sched.tick(at(12, 0, 59)) == []
    assert sched.tick(at(12, 1, 0)) == ["every-minute"]
    wait_for(lambda: not sched.running())
    assert marker.read_text() == "2025-01-01T12:01:00+00:00"
    assert sched.tick(at(12, 1, 30)) == []  # already ran for 12:01
    assert sorted(sched.tick(at(13, 0, 1))) == ["every-minute", "hourly"]
    wait_for(lambda: not sched.running())

    records = runs(home)
    assert [(r["job"], r["scheduled"], r["exit_code"]) for r in records[:1]] == [
        ("every-minute", "2025-01-01T12:01:00+00:00", 0)
    ]
    assert sorted((r["job"], r["scheduled"]) for r in records[1:]) == [
        ("every-minute", "2025-01-01T13:00:00+00:00"),
        ("hourly", "2025-01-01T13:00:00+00:00"),
    ]
    first = records[0]
    assert first["kind"] == "batch"
    assert first["file"] == str(jobs / "every-minute.yaml")
    assert first["skipped"] is None and first["error"] is None and first["terminated"] is False
    assert datetime.fromisoformat(first["start"]) <= datetime.fromisoformat(first["end"])
    assert 0 <= first["duration_s"] < 10


def test_missed_firings_are_merged_into_one_run(sched: Scheduler, jobs: Path, home: Path) -> None:
    write_job(jobs, "every-minute", "* * * * *")
    sched.tick(T0)
    assert sched.tick(at(15, 0, 10)) == ["every-minute"]  # three hours late: one run, not 180
    wait_for(lambda: not sched.running())
    assert sched.next_fires()["every-minute"] == at(15, 1)
    (record,) = runs(home)
    assert record["scheduled"] == "2025-01-01T15:00:00+00:00"  # the latest firing it stands for


def test_a_running_job_is_skipped_not_started_twice(
    sched: Scheduler, jobs: Path, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_job(jobs, "slow", "* * * * *", "import time; time.sleep(1.5)")
    write_job(jobs, "other", "* * * * *", "import time; time.sleep(0.8)")
    sched.tick(T0)
    assert sorted(sched.tick(at(12, 1))) == ["other", "slow"]
    assert sched.running() == ["other", "slow"]  # different jobs run at the same time
    wait_for(lambda: sched.running() == ["slow"])
    assert sched.tick(at(12, 2)) == ["other"]  # slow is still running: that firing is skipped
    assert "skipped: previous run still running" in caplog.text
    wait_for(lambda: not sched.running())

    records = runs(home)
    skipped = [r for r in records if r["skipped"]]
    assert len(skipped) == 1
    assert skipped[0]["job"] == "slow"
    assert skipped[0]["skipped"] == SKIPPED_STILL_RUNNING
    assert skipped[0]["scheduled"] == "2025-01-01T12:02:00+00:00"
    assert skipped[0]["exit_code"] is None and skipped[0]["start"] is None
    assert sorted(r["job"] for r in records if not r["skipped"]) == ["other", "other", "slow"]


def test_a_failing_job_is_recorded_and_the_scheduler_goes_on(
    sched: Scheduler, jobs: Path, home: Path
) -> None:
    write_job(jobs, "fails", "* * * * *", "import sys; sys.exit(3)")
    write_job(jobs, "crashes", "* * * * *", "raise RuntimeError('boom')")
    sched.tick(T0)
    for minute in (1, 2):
        assert sorted(sched.tick(at(12, minute))) == ["crashes", "fails"]
        wait_for(lambda: not sched.running())
    codes = sorted((r["job"], r["exit_code"]) for r in runs(home))
    assert codes == [("crashes", 1), ("crashes", 1), ("fails", 3), ("fails", 3)]


def test_a_command_that_cannot_start_is_recorded(jobs: Path, home: Path) -> None:
    write_job(jobs, "missing", "* * * * *")
    sched = Scheduler(jobs, command=lambda job: [str(jobs / "no-such-program")])
    sched.tick(T0)
    assert sched.tick(at(12, 1)) == []
    (record,) = runs(home)
    assert record["job"] == "missing"
    assert record["error"].startswith("could not start:")
    assert record["exit_code"] is None


def test_broken_files_are_skipped_and_logged_once_while_good_jobs_run(
    sched: Scheduler, jobs: Path, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_job(jobs, "good", "* * * * *")
    (jobs / "not-yaml.yaml").write_text("name: x\nschedule: [unclosed\n")
    (jobs / "unquoted.yml").write_text("name: y\nschedule: */5 * * * *\n")
    (jobs / "bad-cron.yaml").write_text('name: z\nschedule: "61 * * * *"\n')
    (jobs / "no-name.yaml").write_text('schedule: "@daily"\n')
    (jobs / "bad-kind.yaml").write_text('name: k\nschedule: "@daily"\nkind: deploy\n')
    (jobs / "bad-zone.yaml").write_text('name: tz\nschedule: "@daily"\ntimezone: Mars/Olympus\n')
    (jobs / "copy-of-good.yaml").write_text('name: good\nschedule: "* * * * *"\n')
    (jobs / "a-list.yaml").write_text("- 1\n- 2\n")
    (jobs / "notes.txt").write_text("schedule: nonsense")

    with caplog.at_level(logging.ERROR, logger="modelport.scheduler"):
        for minute in (1, 2, 3):
            sched.tick(T0 + timedelta(minutes=minute - 1))
            wait_for(lambda: not sched.running())
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 7, errors  # once each, not once per loop
    joined = "\n".join(errors)
    assert "not-yaml.yaml is not valid YAML" in joined
    assert "unquoted.yml is not valid YAML" in joined and "Quote a schedule" in joined
    assert "minute field '61' is not valid: it takes 0-59" in joined
    assert "no-name.yaml has a schedule but no name" in joined
    assert "kind 'deploy' is not one of batch, monitor, retrain" in joined
    assert "unknown timezone 'Mars/Olympus'" in joined
    assert "name 'good' is already used by" in joined
    assert [r["job"] for r in runs(home)] == ["good", "good"]

    # A broken file that is fixed runs; broken again, it is reported again.
    caplog.clear()
    (jobs / "bad-cron.yaml").write_text('name: z\nschedule: "* * * * *"\n')
    sched.tick(at(12, 2, 40))
    assert sorted(sched.tick(at(12, 3))) == ["good", "z"]
    wait_for(lambda: not sched.running())
    (jobs / "bad-cron.yaml").write_text('name: z\nschedule: "* * * * * *"\n')
    sched.tick(at(12, 3, 30))
    assert "expected 5 fields" in caplog.text


def test_edits_additions_and_removals_take_effect(sched: Scheduler, jobs: Path, home: Path) -> None:
    out = jobs.parent / "out.txt"
    path = write_job(jobs, "job", "0 * * * *", f"open({str(out)!r}, 'a').write('v1 ')")
    sched.tick(T0)
    assert sched.next_fires() == {"job": at(13, 0)}

    write_job(jobs, "job", "*/2 * * * *", f"open({str(out)!r}, 'a').write('v2 ')")  # new schedule
    assert sched.tick(at(12, 0, 40)) == []
    assert sched.next_fires() == {"job": at(12, 2)}
    assert sched.tick(at(12, 2)) == ["job"]
    wait_for(lambda: not sched.running())

    # Same schedule, new content: the timing is kept and the new content runs.
    write_job(jobs, "job", "*/2 * * * *", f"open({str(out)!r}, 'a').write('v3 ')")
    assert sched.tick(at(12, 4)) == ["job"]
    wait_for(lambda: not sched.running())
    assert out.read_text() == "v2 v3 "

    write_job(jobs, "added", "* * * * *")
    path.unlink()
    assert sched.tick(at(12, 4, 30)) == []
    assert sched.next_fires() == {"added": at(12, 5)}
    assert sched.tick(at(12, 6)) == ["added"]
    wait_for(lambda: not sched.running())


def test_run_once_runs_every_job_now_and_waits(sched: Scheduler, jobs: Path, home: Path) -> None:
    done = jobs.parent
    for name in ("a", "b"):
        marker = str(done / f"{name}.done")
        write_job(jobs, name, "0 0 1 1 *", f"import time; time.sleep(0.3); open({marker!r}, 'w')")
    write_job(jobs, "c", "@yearly", "import sys; sys.exit(2)", kind="monitor")
    records = sched.run_once()
    assert sched.running() == []
    assert (done / "a.done").exists() and (done / "b.done").exists()
    assert sorted((r.job, r.exit_code, r.ok) for r in records) == [
        ("a", 0, True),
        ("b", 0, True),
        ("c", 2, False),
    ]
    a, b = (r for r in records if r.job in "ab")
    assert a.start and a.end and b.start and b.end
    assert a.start < b.end and b.start < a.end  # they ran at the same time
    assert all(r.scheduled is None for r in records)
    assert [r.kind for r in records if r.job == "c"] == ["monitor"]
    assert len(runs(home)) == 3


def test_shutdown_waits_for_short_runs_and_terminates_long_ones(
    sched: Scheduler, jobs: Path, home: Path
) -> None:
    write_job(jobs, "short", "* * * * *", "import time; time.sleep(0.4)")
    write_job(jobs, "long", "* * * * *", "import time; time.sleep(60)")
    sched.tick(T0)
    assert sorted(sched.tick(at(12, 1))) == ["long", "short"]
    started = time.monotonic()
    sched.shutdown(grace=1.0)
    assert time.monotonic() - started < 8
    assert sched.running() == []
    assert sched.tick(at(12, 2)) == []  # stopped: nothing new starts
    by_job = {r["job"]: r for r in runs(home)}
    assert by_job["short"]["exit_code"] == 0 and not by_job["short"]["terminated"]
    assert by_job["long"]["terminated"] is True
    assert by_job["long"]["exit_code"] == -signal.SIGTERM


def test_run_forever_stops_on_the_event(jobs: Path, home: Path) -> None:
    write_job(jobs, "tick", "* * * * *")
    times = iter(T0 + timedelta(seconds=20 * i) for i in range(10_000))
    events: list[ScheduledRun] = []
    stop = threading.Event()
    sched = Scheduler(jobs, command=python, clock=lambda: next(times), on_event=events.append)
    loop = threading.Thread(target=sched.run_forever, kwargs={"stop": stop, "poll": 0.01})
    loop.start()
    wait_for(lambda: sum(1 for e in events if e.end is not None) >= 2)
    stop.set()
    loop.join(10)
    assert not loop.is_alive()
    started = [e for e in events if e.end is None]
    assert started and all(e.job == "tick" for e in started)


def test_a_runner_callable_replaces_the_subprocess(jobs: Path, home: Path) -> None:
    write_job(jobs, "ok", "* * * * *")
    write_job(jobs, "bug", "* * * * *")

    def runner(path: Path) -> int:
        if path.stem == "bug":
            raise ValueError("runner bug")
        return 0

    sched = Scheduler(jobs, runner=runner)
    sched.tick(T0)
    sched.tick(at(12, 1))
    wait_for(lambda: not sched.running())
    by_job = {r["job"]: r for r in runs(home)}
    assert by_job["ok"]["exit_code"] == 0
    assert by_job["bug"]["error"] == "ValueError: runner bug"


def test_sigterm_stops_the_loop_and_terminates_running_jobs(jobs: Path, home: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    write_job(
        jobs,
        "long",
        "* * * * *",
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)",
    )
    script = tmp_path / "loop.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            from datetime import UTC, datetime, timedelta
            from pathlib import Path
            from modelport.scheduler import Scheduler

            times = iter(datetime(2025, 1, 1, 12, 0, 30, tzinfo=UTC) + timedelta(minutes=i)
                         for i in range(100_000))
            command = lambda job: [sys.executable, "-c", job.spec["script"]]
            Scheduler(Path({str(jobs)!r}), command=command, clock=lambda: next(times)).run_forever(
                poll=0.05, grace=0.5)
            print("clean exit")
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(pid_file.exists)
        wait_for(lambda: pid_file.read_text().strip())
        child = int(pid_file.read_text())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "clean exit" in out
    assert "Stopping (SIGTERM)" in err
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    records = runs(home)
    assert any(r["job"] == "long" and r["terminated"] for r in records)


def test_default_command_and_job_parsing(jobs: Path) -> None:
    path = jobs / "scores.yaml"
    path.write_text('name: scores\nschedule: "0 2 * * *"\nmodel: credit@production\n')
    job = parse_job(path)
    assert job is not None and job.kind == "batch" and str(job.schedule) == "0 2 * * *"
    argv = default_command(job)
    assert argv[-3:] == ["batch", "run", str(path)]
    assert Path(argv[0]).exists()
    path.write_text('name: drift\nschedule: "@daily"\nkind: retrain\ntimezone: Europe/Paris\n')
    job = parse_job(path)
    assert job is not None and default_command(job)[-3:] == ["retrain", "run", str(path)]
    assert str(job.timezone) == "Europe/Paris"
    path.write_text("name: no-schedule\n")
    assert parse_job(path) is None


def test_a_registered_job_kind_runs_its_command(jobs: Path) -> None:
    path = jobs / "report.yaml"
    path.write_text('name: report\nschedule: "@hourly"\nkind: report\n')
    with pytest.raises(InvalidInput, match="kind 'report' is not one of"):
        parse_job(path)
    register_kind("report", ("monitor", "report"))
    try:
        job = parse_job(path)
        assert job is not None and default_command(job)[-3:] == ["monitor", "report", str(path)]
    finally:
        KINDS.pop("report")
    with pytest.raises(InvalidInput, match="needs a name and a modelport command"):
        register_kind("empty", ())


def test_a_missing_jobs_folder_is_a_clear_error(tmp_path: Path, home: Path) -> None:
    with pytest.raises(InvalidInput, match=r"Jobs folder .*nope. does not exist"):
        Scheduler(tmp_path / "nope")
