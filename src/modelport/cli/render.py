"""Rich renderings of registry records: the model list, version history and one version's detail."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from modelport.cli.output import ago, aliases_text, key_values, number, when
from modelport.model_version import ModelVersion
from modelport.store.metadata import ModelSummary

SHORT_SHA = 12


def titled_table(title: str, **kwargs: Any) -> Table:
    """The one table style of the CLI: bold header, left title, a rule under the header."""
    return Table(
        title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, show_edge=False, **kwargs
    )


def models_table(models: list[ModelSummary]) -> Table:
    table = titled_table("Registered models")
    table.add_column("name", style="bold")
    table.add_column("latest", justify="right")
    table.add_column("versions", justify="right")
    table.add_column("aliases", style="cyan")
    table.add_column("flavor")
    table.add_column("updated")
    for m in models:
        table.add_row(
            escape(m.name),
            str(m.latest_version),
            str(m.versions),
            escape(aliases_text(m.aliases)),
            m.flavor,
            ago(m.updated_at),
        )
    return table


def versions_table(name: str, versions: list[ModelVersion]) -> Table:
    table = titled_table(f"Versions of {escape(name)}")
    table.add_column("version", justify="right", style="bold")
    table.add_column("aliases", style="cyan", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("metrics", no_wrap=True)
    table.add_column("tags")
    for mv in versions:
        table.add_row(
            str(mv.version),
            escape(aliases_text(mv.aliases)),
            when(mv.created_at, seconds=False),
            escape(key_values(mv.metrics)),
            escape(key_values(mv.tags)),
        )
    return table


def version_detail(mv: ModelVersion) -> RenderableType:
    """Everything recorded about one version, as a stack of Rich renderables."""
    head = Text.assemble((mv.ref, "bold"))
    if mv.aliases:
        head.append("  " + "  ".join(f"@{a}" for a in mv.aliases), style="cyan")
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    rows: list[tuple[str, str]] = [
        ("flavor", f"{mv.flavor} {mv.task or ''}".strip()),
        ("created", f"{when(mv.created_at)} ({ago(mv.created_at)})"),
        ("description", mv.description or "-"),
        ("metrics", key_values(mv.metrics)),
        ("tags", key_values(mv.tags)),
        ("requirements", ", ".join(mv.requirements) or "-"),
        ("environment", _environment(mv.environment)),
        ("lineage", _lineage(mv.lineage)),
        ("reference", _reference(mv.reference)),
        ("compiled", _compiled(mv.compiled)),
        ("artifacts", mv.artifact_uri),
    ]
    for key, value in rows:
        facts.add_row(key, escape(value))
    return Group(head, facts, Text(""), signature_table(mv), Text(""), files_table(mv.files))


def _compiled(compiled: dict[str, dict[str, Any]]) -> str:
    if not compiled:
        return "- (native runtime only; see `modelport compile`)"
    return ", ".join(
        f"{rt} twin, parity {'passed' if c['passed'] else 'FAILED (not used)'}" for rt, c in compiled.items()
    )


def signature_table(mv: ModelVersion) -> Table:
    sig = mv.signature
    if sig.tensor is not None:
        table = Table(title="Signature (tensor)", title_justify="left", header_style="bold")
        table.add_column("dtype")
        table.add_column("shape")
        table.add_row(sig.tensor.dtype, str(tuple(sig.tensor.shape)))
        return table
    stats = mv.reference.get("columns", {})
    cols = sig.columns or ()
    table = titled_table(f"Signature ({len(cols)} columns)")
    table.add_column("column", style="bold")
    table.add_column("type")
    table.add_column("nulls", justify="right")
    table.add_column("training reference: mean (p05–p95) or top values", overflow="fold")
    for c in cols:
        s = stats.get(c.name, {})
        type_text = c.type if c.categories is None else f"{c.type} ({len(c.categories)})"
        table.add_row(escape(c.name), type_text, _nulls(c.nullable, s), escape(_summary(s)))
    return table


def files_table(files: dict[str, str]) -> Table:
    table = titled_table("Files")
    table.add_column("path")
    table.add_column("sha256")
    for path, digest in sorted(files.items()):
        table.add_row(escape(path), digest[:SHORT_SHA])
    return table


def _nulls(nullable: bool, stats: dict[str, Any]) -> str:
    """``no`` for a non-nullable column, else the share of nulls in the training reference."""
    if not nullable:
        return "no"
    return f"{stats['null_share']:.1%}" if "null_share" in stats else "yes"


def _summary(s: dict[str, Any]) -> str:
    if s.get("kind") == "numeric" and "mean" in s:
        q = s.get("quantiles", {})
        spread = f" ({number(q['p05'])}–{number(q['p95'])})" if "p05" in q and "p95" in q else ""
        return f"{number(s['mean'])}{spread}"
    if s.get("kind") == "categorical" and s.get("top"):
        total = max(1, int(s.get("count", 0)))
        top = list(s["top"].items())
        shown = ", ".join(f"{k} {v / total:.0%}" for k, v in top[:2])
        more = f", +{len(top) - 2} more" if len(top) > 2 else ""
        return shown + more
    return "-"


def _environment(env: dict[str, Any]) -> str:
    if not env:
        return "-"
    return f"Python {env.get('python', '?')} on {env.get('platform', '?')}"


def _lineage(lineage: dict[str, Any]) -> str:
    parts = []
    git = lineage.get("git")
    if git:
        dirty = " (uncommitted changes)" if git.get("dirty") else ""
        parts.append(f"git {str(git.get('commit', ''))[:SHORT_SHA]}{dirty} in {git.get('root', '?')}")
    else:
        parts.append("git -")
    fp = lineage.get("data_fingerprint")
    rows = lineage.get("training_rows")
    if fp:
        parts.append(f"data {fp[:SHORT_SHA]}" + (f" ({rows:,} rows)" if rows is not None else ""))
    parts.append(f"parent {lineage.get('parent') or '-'}")
    return " · ".join(parts)


def _reference(ref: dict[str, Any]) -> str:
    if not ref:
        return "-"
    sample, source = ref.get("sample_rows"), ref.get("source_rows")
    text = f"{sample:,} rows" if sample is not None else "?"
    if source is not None and source != sample:
        text += f" sampled from {source:,}"
    return f"{text} in {ref.get('file', '?')}"
