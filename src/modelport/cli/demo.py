"""``modelport demo``: train a credit model, register and promote it, score new applications.

The training code is ordinary user code (:mod:`modelport_examples.credit`); the demo shows what
modelport adds around it, through the same public API a notebook would use.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

import modelport as mp
from modelport.cli.output import console, err_console, print_json, seconds
from modelport.cli.render import titled_table
from modelport.errors import ModelNotFound

MODEL = "credit"
ALIAS = "production"
NEW_APPLICATIONS = 1_000
SHOWN = 8
APPROVE_BELOW, REVIEW_BELOW = 0.15, 0.35


def demo(
    rows: Annotated[
        int, typer.Option("--rows", min=200, help="Loan applications to generate and train on.")
    ] = 20_000,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Data seed (default: the next version number, so each run differs)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary instead.")] = False,
) -> None:
    """Train, register, promote and use a credit-default model, end to end.

    Generates loan applications, trains a scikit-learn pipeline, registers it as the next version of
    'credit', points credit@production at it, then loads credit@production and scores new applications.
    Everything is stored in MODELPORT_HOME (default ~/.modelport); run it again to add a version.
    """
    from modelport_examples.credit import (
        FEATURES,
        generate_applications,
        split_applications,
        train_credit_model,
    )

    say = _Steps(quiet=as_json)
    settings = mp.Settings.from_env()
    home = settings.home
    previous, latest = _existing()
    seed = seed if seed is not None else (latest or 0) + 1
    say.header("[bold]modelport demo[/]: a credit-default model from training to in-app predictions")

    t0 = time.perf_counter()
    df = generate_applications(rows, seed=seed)
    say.step(
        f"Generated {rows:,} loan applications",
        f"{len(FEATURES)} features, {df['default'].mean():.1%} defaulted, "
        f"{df['employment_length'].isna().mean():.1%} missing employment length",
        time.perf_counter() - t0,
    )

    t0 = time.perf_counter()
    with say.spinner("Training ColumnTransformer → HistGradientBoostingClassifier …"):
        model, auc = train_credit_model(df, seed=seed)
    X_train = split_applications(df, seed=seed)[0]
    say.step(
        f"Trained a scikit-learn pipeline: test [bold]AUC {auc:.3f}[/]",
        f"one-hot + imputation → HistGradientBoosting, {len(X_train):,} training rows",
        time.perf_counter() - t0,
    )

    t0 = time.perf_counter()
    mv = mp.register(
        model,
        MODEL,
        sample=X_train,
        metrics={"auc": round(auc, 4)},
        tags={"team": "risk", "source": "modelport demo", "seed": str(seed)},
        description="Probability of default of consumer loan applications (simulated data).",
        alias=ALIAS,
        parent=previous,
    )
    say.step(
        f"Registered [bold]{mv.ref}[/] ({mv.flavor} {mv.task})",
        f"signature: {len(mv.signature.names)} columns · reference: "
        f"{mv.reference.get('sample_rows', 0):,} rows · {len(mv.files)} files (sha256)",
        time.perf_counter() - t0,
    )
    say.step(
        f"Promoted [cyan]{MODEL}@{ALIAS}[/] → [bold]{mv.ref}[/]",
        f"was {previous}" if previous else "new alias",
    )

    t0 = time.perf_counter()
    predictor = mp.load(f"{MODEL}@{ALIAS}")
    new = generate_applications(NEW_APPLICATIONS, seed=seed + 10_000, with_label=False)
    p_default = predictor.predict_proba(new[FEATURES])[:, (predictor.classes or [0, 1]).index(1)]
    elapsed = time.perf_counter() - t0
    decisions = [_decision(p) for p in p_default]
    counts = {d: decisions.count(d) for d in ("approve", "review", "decline")}
    say.step(
        f"Loaded [cyan]{MODEL}@{ALIAS}[/] in-app, scored {len(new):,} new applications",
        " · ".join(f"{n:,} {d}" for d, n in counts.items())
        + f" (P(default) thresholds {APPROVE_BELOW} / {REVIEW_BELOW})",
        elapsed,
    )
    new_file = _save_new_applications(new, home)

    t0 = time.perf_counter()
    with say.spinner("Compiling to ONNX and checking parity on the reference sample …"):
        # registration built and gated the twin already (unless compiling is off)
        report = mp.default_client().registry.parity_report(mv.ref) or mp.compile(mv.ref)
    compiled = {"passed": report.passed, "summary": report.summary()}
    detail = report.summary()
    if report.passed:
        one = new[FEATURES].head(1)
        native_s = _per_call(mp.load(mv.ref, runtime="native").predict_proba, one)
        onnx_s = _per_call(mp.load(mv.ref, runtime="onnx").predict_proba, one)
        compiled.update(native_1row_s=native_s, onnx_1row_s=onnx_s)
        detail += f" · 1-row predict {native_s * 1e3:.2f} ms native → {onnx_s * 1e6:.0f} µs onnx"
    say.step(f"Compiled [bold]{mv.ref}[/] to ONNX", detail, time.perf_counter() - t0)

    bundle = None
    if report.passed:
        from modelport.edge.export import export_bundle

        t0 = time.perf_counter()
        bundle = home / "demo" / f"{MODEL}-edge-v{mv.version}"
        if bundle.exists():
            shutil.rmtree(bundle)
        result = export_bundle(mp.default_client().registry, mv.ref, bundle)
        compiled["edge_bundle"] = str(bundle)
        say.step(
            "Exported an edge bundle (numpy + onnxruntime only)",
            f"{bundle} · model.onnx {result.model_bytes / 1024:,.0f} KiB",
            time.perf_counter() - t0,
        )

    from modelport.cli.demo_serving import call_every_protocol, first_prediction

    t0 = time.perf_counter()
    served = call_every_protocol(f"{MODEL}@{ALIAS}", new[FEATURES].head(3))
    say.step(
        f"Served [cyan]{MODEL}@{ALIAS}[/] over HTTP on loopback and called it three ways, then stopped it",
        " · ".join(f"{r['protocol']} {r['path']}: {first_prediction(r)} ({r['ms']:.0f} ms)" for r in served),
        time.perf_counter() - t0,
    )

    from modelport.cli.demo_batch import JOB, two_incremental_runs

    t0 = time.perf_counter()
    batch = two_incremental_runs(home, f"{MODEL}@{ALIAS}", seed)
    first, second = batch["runs"]
    say.step(
        f"Ran the batch job [bold]{JOB}[/] twice as new applications arrived",
        f"run 1: {first.rows_out:,} rows · run 2: only the {second.rows_out:,} new rows "
        f"(watermark {second.stats['watermark_before'][:19]} → {second.stats['watermark_after'][:19]}) · "
        f"{batch['output_rows']:,} scores in {batch['output']}",
        time.perf_counter() - t0,
    )

    from modelport.cli.demo_monitor import calm_then_drift

    t0 = time.perf_counter()
    watched = calm_then_drift(home, f"{MODEL}@{ALIAS}", seed)
    before, after = watched["before"], watched["after"]
    auc_before = (
        before.performance.metrics.get("roc_auc", float("nan")) if before.performance else float("nan")
    )
    auc_after = after.performance.metrics.get("roc_auc", float("nan")) if after.performance else float("nan")
    new_purposes = [q.message for q in after.quality if q.check == "new_category"]
    verdict = "DATASET DRIFT" if after.dataset_drift else "drift"
    drifted_cols = ", ".join(after.drifted_columns) or "none"
    say.step(
        "Monitored production: a calm week, then drift",
        f"calm: {before.drift_share:.0%} of columns drifted, AUC {auc_before:.3f} · drifted: "
        f"{verdict} in {drifted_cols}"
        f"{' · ' + new_purposes[0] if new_purposes else ''} · labels arrived: AUC {auc_before:.3f} → "
        f"{auc_after:.3f} · report {watched['report']}",
        time.perf_counter() - t0,
    )

    from modelport.cli.demo_retrain import close_the_loop

    t0 = time.perf_counter()
    from modelport.cli.demo_monitor import drifted_applications

    live = drifted_applications(300, seed + 1_000)
    loop = close_the_loop(home, MODEL, ALIAS, watched["calm"], watched["drifted"], live)
    outcome, gated = loop["outcome"], loop["gated"]
    metric = "roc_auc"
    old_m, new_m = gated.metrics.get(f"champion_{metric}"), gated.metrics.get(f"challenger_{metric}")
    scores = f"AUC {new_m:.3f} vs the champion's {old_m:.3f} on the latest data" if old_m is not None else ""
    shadowed = ""
    if loop["live"] is not None:
        m = loop["live"].metrics
        if m.get(f"champion_{metric}") is not None and m.get(f"challenger_{metric}") is not None:
            shadowed = (
                f" · shadowed {m['challenger_rows']} live requests: AUC {m[f'challenger_{metric}']:.3f} vs "
                f"{m[f'champion_{metric}']:.3f}"
            )
    say.step(
        f"Closed the loop: drift triggered retraining, the challenger was {outcome.state}",
        f"{'; '.join(outcome.reasons)} · {outcome.challenger or ''} {scores}{shadowed} · the server "
        f"answered with version {loop['served_before']} before and {loop['served_after']} after",
        time.perf_counter() - t0,
    )

    from modelport.advisor import Target, profile, recommend

    t0 = time.perf_counter()
    with say.spinner("Profiling the model for the deployment advisor …"):
        target = Target.parse(rate="300/s", p99="25ms", rows_per_day="20M")
        profiled = profile(f"{MODEL}@{ALIAS}", repeats=50, batch_sizes=(1000,), int8=False)
        advice = recommend(profiled, target)
    cap = advice.capacity or {}
    say.step(
        f"Advised: [bold]{advice.mode.upper()}[/] on {advice.runtime} for 300 req/s at p99 25 ms",
        f"{cap.get('replicas', '?')} replica(s) × {cap.get('workers', '?')} worker(s), "
        f"{cap.get('memory_mb', '?')} MB each · full report: modelport advise {MODEL}@{ALIAS} "
        "--rate 300/s --p99 25ms --rows-per-day 20M",
        time.perf_counter() - t0,
    )

    if as_json:
        summary = _summary(mv, auc, seed, rows, previous, home, new, p_default, decisions, new_file)
        summary["advice"] = {"profile": profiled.to_dict(), "recommendation": advice.to_dict()}
        summary["retraining"] = {
            **outcome.to_dict(),
            "served_before": loop["served_before"],
            "served_after": loop["served_after"],
        }
        summary["monitoring"] = {
            "calm": before.to_dict(),
            "drifted": after.to_dict(),
            "report": str(watched["report"]),
        }
        summary["batch"] = {
            "job": str(batch["job"]),
            "runs": [r.to_dict() for r in batch["runs"]],
            "output_rows": batch["output_rows"],
        }
        served_summary = [{k: r[k] for k in ("protocol", "path", "ms")} for r in served]
        print_json({**summary, "compiled": compiled, "served": served_summary})
        return
    out = console()
    out.print()
    from modelport.cli.advise import report as advice_report

    out.print(advice_report(profiled, target, advice))
    out.print()
    out.print(_scored_table(new.head(SHOWN), p_default[:SHOWN], decisions[:SHOWN]))
    out.print()
    out.print(f"Store: {escape(_store_text(settings))}", soft_wrap=True)
    out.print("Next:")
    for line in (
        f"modelport models show {MODEL}@{ALIAS}",
        f"modelport predict {MODEL}@{ALIAS} --input {escape(str(new_file))} --output scored.parquet",
        f"modelport serve {MODEL}@{ALIAS} --port 8080",
        f"modelport batch run {escape(str(batch['job']))} && modelport batch history {JOB}",
        f"open {escape(str(watched['report']))}   # the monitoring report",
        f"modelport retrain history {MODEL}",
        f'python: mp.load("{MODEL}@{ALIAS}").predict_proba(df)',
        *([f"python {escape(str(bundle))}/run.py --input new.csv --output scored.csv"] if bundle else []),
    ):
        out.print(f"  {line}", soft_wrap=True)


def _per_call(fn: Any, data: Any, calls: int = 50) -> float:
    """Mean seconds per call over a few calls, for the printout (the benchmarks measure properly)."""
    fn(data)
    t0 = time.perf_counter()
    for _ in range(calls):
        fn(data)
    return (time.perf_counter() - t0) / calls


def _existing() -> tuple[str | None, int | None]:
    """(the version credit@production points at, the latest version number), where they exist."""
    try:
        latest = mp.get(MODEL).version
    except ModelNotFound:
        return None, None
    try:
        return mp.get(f"{MODEL}@{ALIAS}").ref, latest
    except ModelNotFound:
        return None, latest


def _store_text(settings: mp.Settings) -> str:
    """Where the store lives; a non-default database is named by its kind only (URLs hold passwords)."""
    default = mp.Settings.from_env({"MODELPORT_HOME": str(settings.home)})
    db = "modelport.db" if settings.db_url == default.db_url else f"{settings.db_url.split(':')[0]} database"
    art = "artifacts/" if settings.artifacts_url == default.artifacts_url else settings.artifacts_url
    return f"MODELPORT_HOME={settings.home} ({db} + {art})"


def _decision(p: float) -> str:
    if p < APPROVE_BELOW:
        return "approve"
    return "review" if p < REVIEW_BELOW else "decline"


def _save_new_applications(new: Any, home: Any) -> Any:
    """Keep the new applications so `modelport predict` can be tried on them."""
    folder = home / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "new_applications.parquet"
    tmp = path.with_suffix(".parquet.tmp")
    new.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def _scored_table(rows: Any, p_default: Any, decisions: list[str]) -> Table:
    table = titled_table(f"First {len(rows)} of the new applications", pad_edge=False)
    for col, justify in (
        ("application", "left"),
        ("income", "right"),
        ("purpose", "left"),
        ("loan", "right"),
        ("P(default)", "right"),
        ("decision", "left"),
    ):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    style = {"approve": "green", "review": "yellow", "decline": "red"}
    for (_, r), p, d in zip(rows.iterrows(), p_default, decisions, strict=True):
        income = "n/a" if r["annual_income"] != r["annual_income"] else f"{r['annual_income']:,.0f}"
        table.add_row(
            r["application_id"],
            income,
            r["purpose"],
            f"{r['loan_amount']:,.0f}",
            f"{p:.3f}",
            f"[{style[d]}]{d}[/]",
        )
    return table


def _summary(
    mv: mp.ModelVersion,
    auc: float,
    seed: int,
    rows: int,
    previous: str | None,
    home: Any,
    new: Any,
    p_default: Any,
    decisions: list[str],
    new_file: Any,
) -> dict[str, Any]:
    return {
        "model": mv.ref,
        "name": mv.name,
        "version": mv.version,
        "alias": ALIAS,
        "previous": previous,
        "auc": auc,
        "seed": seed,
        "rows": rows,
        "home": str(home),
        "new_applications_file": str(new_file),
        "scored": [
            {"application_id": a, "p_default": float(p), "decision": d}
            for a, p, d in zip(new["application_id"], p_default, decisions, strict=True)
        ][:SHOWN],
        "decisions": {d: decisions.count(d) for d in ("approve", "review", "decline")},
    }


class _Steps:
    """Numbered progress lines on stdout, a spinner on stderr; silent in --json mode."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.n = 0
        self.out = console()

    def header(self, text: str) -> None:
        if not self.quiet:
            self.out.print(text)

    def step(self, text: str, detail: str = "", elapsed: float | None = None) -> None:
        self.n += 1
        if self.quiet:
            return
        took = f" [dim]({seconds(elapsed)})[/]" if elapsed is not None else ""
        self.out.print(f"[green]✓[/] {self.n}. {text}{took}")
        if detail:
            self.out.print(f"     [dim]{escape(detail)}[/]")

    @contextmanager
    def spinner(self, text: str) -> Iterator[None]:
        with nullcontext() if self.quiet else err_console().status(text):
            yield
