"""``python -m modelport.edge BUNDLE --input new.csv --output scored.csv`` (numpy + onnxruntime only)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from modelport.edge.runtime import load_bundle
from modelport.edge.tables import RowWriter, read_rows
from modelport.errors import ModelportError


def score_file(bundle: str | Path, input_path: Path, output_path: Path, proba: bool = True) -> int:
    """Score a CSV/JSON-lines file with a bundle; returns the number of rows written."""
    model = load_bundle(bundle)
    if output_path.resolve() == input_path.resolve():
        raise ModelportError("--output must be another file than --input.")
    writer = RowWriter(output_path.with_name(f".{output_path.stem}.tmp-{os.getpid()}{output_path.suffix}"))
    rows = 0
    try:
        for chunk in read_rows(input_path, model.signature):
            batch = model.prepare(chunk)
            outputs: dict = {}
            if proba and model.task == "classifier":
                labels, probabilities = model.predict_with_proba(batch)
                assert probabilities is not None
                outputs["prediction"] = labels
                for j, c in enumerate(model.classes or range(probabilities.shape[1])):
                    outputs[f"proba_{c}"] = probabilities[:, j]
            else:
                outputs["prediction"] = model.predict_batch(batch)
            writer.write(chunk, outputs)
            rows += batch.n_rows
        writer.close()
        os.replace(writer.path, output_path)
    except BaseException:
        writer.close()
        writer.path.unlink(missing_ok=True)
        raise
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelport.edge", description=__doc__)
    parser.add_argument("bundle", help="bundle folder or .zip")
    parser.add_argument("--input", required=True, type=Path, help=".csv or .jsonl rows to score")
    parser.add_argument("--output", required=True, type=Path, help=".csv or .jsonl to write")
    parser.add_argument("--no-proba", action="store_true", help="omit proba_<class> columns")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        rows = score_file(args.bundle, args.input, args.output, proba=not args.no_proba)
    except (ModelportError, OSError) as exc:
        print(f"Error: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        return 1
    print(f"Scored {rows:,} rows in {time.perf_counter() - start:.2f} s -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
