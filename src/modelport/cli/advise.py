"""``modelport advise``: profile a model on this machine and recommend real-time, batch or edge."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from modelport.cli.output import console, err_console, print_json
from modelport.cli.render import titled_table


def advise(
    ref: Annotated[str, typer.Argument(help="The model: name (latest), name:VERSION or name@ALIAS.")],
    rate: Annotated[
        str | None, typer.Option(help="Peak requests: 300/s, 20/min, 5000/h (one row per request).")
    ] = None,
    p99: Annotated[
        str | None, typer.Option("--p99", help="Latency every 99th request meets: 25ms, 0.5s.")
    ] = None,
    rows_per_day: Annotated[str | None, typer.Option(help="Batch volume: 20M, 500k rows per day.")] = None,
    device_memory: Annotated[
        str | None, typer.Option(help="Memory of the edge device: 256MB, 1GiB (decimal MB, binary MiB).")
    ] = None,
    rows_per_request: Annotated[int, typer.Option(min=1, help="Rows in each request.")] = 1,
    cores_per_replica: Annotated[
        int, typer.Option(min=1, help="Cores (= worker processes) per serving replica.")
    ] = 2,
    runtime: Annotated[
        list[str] | None, typer.Option("--runtime", help="native and/or onnx (repeat) [both].")
    ] = None,
    repeats: Annotated[int, typer.Option(min=10, help="One-row calls timed per runtime.")] = 200,
    compile_twin: Annotated[
        bool, typer.Option("--compile", help="Compile an ONNX twin first when the version has none.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the profile and advice as JSON.")] = False,
) -> None:
    """Profile a model on this machine and recommend real-time, batch or edge, with the capacity.

    Measures load time and memory (in a fresh process), 1-row latency and batch throughput for the
    native and ONNX runtimes, the gain of micro-batching and the edge bundle's size and memory;
    then sizes replicas and workers for --rate at --p99, core-hours for --rows-per-day, and checks
    the bundle against --device-memory. `capacity` in --json is what Kubernetes manifests need.

    Example: modelport advise credit:3 --rate 300/s --p99 25ms --rows-per-day 20M
    """
    from modelport.advisor import Target, profile, recommend
    from modelport.client import default_client

    target = Target.parse(rate, p99, rows_per_day, device_memory, rows_per_request)
    if target.empty:
        from modelport.errors import InvalidInput

        raise InvalidInput("Give a target: --rate and --p99, --rows-per-day, or --device-memory.")
    client = default_client()
    with err_console().status(f"Profiling {ref}…") as status:
        if compile_twin and "onnx" not in client.registry.get(ref).compiled:
            status.update(f"Compiling an ONNX twin of {ref}…")
            from modelport.api import compile as compile_version

            compile_version(ref)
        prof = profile(
            ref,
            tuple(runtime or ("native", "onnx")),
            repeats=repeats,
            client=client,
            progress=lambda msg: status.update(msg),
        )
    rec = recommend(prof, target, cores_per_replica=cores_per_replica)
    if as_json:
        print_json({"ref": prof.ref, "target": target.to_dict(), "profile": prof.to_dict(), **rec.to_dict()})
        return
    console().print(report(prof, target, rec))


def report(prof: Any, target: Any, rec: Any) -> RenderableType:
    """The profile table, the recommendation with its reasons, and the capacity."""
    from modelport.advisor.units import fmt_bytes, fmt_count, fmt_rate, fmt_seconds

    runtimes = titled_table(
        f"Profile of {escape(prof.ref)} ({escape(prof.flavor)} {escape(prof.task or '')}) "
        f"on this machine ({prof.cpu_count} cores): 1-row latency, rows/s at a batch size",
        padding=(0, 1),
        pad_edge=False,
    )
    sizes = sorted({n for rp in prof.runtimes.values() for n in rp.throughput})
    heads = ["runtime", "load", "RSS", "p50", "p99"]
    heads += [f"@{fmt_count(n)}" for n in sizes] + ["CPU/row"]
    for name in heads:
        runtimes.add_column(name, justify="left" if name == "runtime" else "right", no_wrap=True)
    for rp in prof.runtimes.values():
        runtimes.add_row(
            rp.runtime,
            fmt_seconds(rp.load_seconds),
            fmt_bytes(rp.process_rss_bytes),
            fmt_seconds(rp.latency_p50_s),
            fmt_seconds(rp.latency_p99_s),
            *(fmt_count(rp.throughput[n]) if n in rp.throughput else "-" for n in sizes),
            fmt_seconds(rp.cpu_seconds_per_row),
        )
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    facts.add_row(
        "artifacts", f"{fmt_bytes(prof.artifact_bytes)} (model files {fmt_bytes(prof.model_bytes)})"
    )
    gains = [f"×{rp.microbatch_gain:.3g} {rp.runtime}" for rp in prof.runtimes.values() if rp.microbatch_gain]
    if gains:
        facts.add_row("micro-batching", ", ".join(gains) + " (32 one-row calls vs one merged 32-row call)")
    facts.add_row("onnx twin", {"passed": "passed parity", "failed": "FAILED parity"}.get(prof.onnx, "none"))
    if prof.bundle is not None:
        b = prof.bundle
        int8 = f", int8 {fmt_bytes(b.int8_model_bytes)}" if b.int8_model_bytes else ""
        facts.add_row(
            "edge bundle",
            f"{fmt_bytes(b.bundle_bytes)} (model.onnx {fmt_bytes(b.model_bytes)}{int8}), "
            f"runs in {fmt_bytes(b.runtime_rss_bytes)}",
        )
    wanted = [
        f"{fmt_rate(target.rate)}" if target.rate else "",
        f"p99 {fmt_seconds(target.p99)}" if target.p99 else "",
        f"{fmt_count(target.rows_per_day)} rows/day" if target.rows_per_day else "",
        f"device {fmt_bytes(target.device_memory)}" if target.device_memory else "",
    ]
    facts.add_row("target", escape(", ".join(w for w in wanted if w)))

    head = Text.assemble(("Recommendation: ", "bold"), (rec.mode.upper(), "bold green"), f" on {rec.runtime}")
    reasons = titled_table("Why")
    reasons.add_column("factor", style="bold", no_wrap=True)
    reasons.add_column("reason", overflow="fold")
    for r in rec.reasons:
        reasons.add_row(r.factor, escape(r.text))
    parts: list[RenderableType] = [runtimes, Text(""), facts, Text(""), head, reasons]
    capacity = _capacity(rec)
    if capacity is not None:
        parts += [Text(""), capacity]
    for note in prof.notes:
        parts.append(Text(f"note: {note}", style="yellow"))
    parts.append(Text("\n".join(f"assumes {a}" for a in rec.assumptions), style="dim"))
    return Group(*parts)


def _capacity(rec: Any) -> Table | None:
    from modelport.advisor.units import fmt_bytes

    table = titled_table("Capacity")
    table.add_column("for", style="bold")
    table.add_column("what it takes", overflow="fold")
    if rec.capacity is not None:
        c = rec.capacity
        table.add_row(
            "serving",
            f"{c['replicas']} replica(s) × {c['workers']} worker(s); per replica cpu {c['cpu']}, "
            f"memory {c['memory_mb']} MB; runtime {c['runtime']}, {c['utilisation']:.0%} busy, "
            f"est. p99 {c['estimated_p99_ms']} ms" + (", with --batching" if rec.batching else ""),
        )
    if rec.batch is not None:
        b = rec.batch
        table.add_row(
            "batch",
            f"{b['core_hours_per_day']:.3g} core-hours/day for {b['rows_per_day']:,} rows on {b['runtime']} "
            f"({b['hours_on_one_replica']:.3g} h on {b['cores_per_replica']} cores)",
        )
    if rec.edge is not None:
        e = rec.edge
        need = f"needs {fmt_bytes(e['needed_bytes'])} of {fmt_bytes(e['device_memory'])}"
        table.add_row(
            "edge", ("fits: " if e["fits"] else "does not fit: ") + need if e["needed_bytes"] else "no bundle"
        )
    return table if table.row_count else None
