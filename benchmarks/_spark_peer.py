"""bench_batch.py's Spark peer; run by benchmarks/.venv-spark's python (pyspark, MLflow), never the
project's: ``python _spark_peer.py JSON_ARGS`` prints ``RESULT {json}`` as its last line.

The way most teams score a Parquet folder with a registered model: the model saved as an MLflow
model (``mlflow.sklearn``, ``predict_proba`` as its pyfunc method), ``mlflow.pyfunc.spark_udf``
applied to the feature columns on a ``local[2]`` session, and the key, prediction and
probabilities written back as Parquet. Timed from the read to the written output; Spark's start-up
(the JVM, the session) and saving the model are timed apart and excluded.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def main(args: dict[str, Any]) -> None:
    import joblib
    import mlflow
    from mlflow.models import infer_signature

    t = time.perf_counter()
    model = joblib.load(args["model"])
    work = Path(args["out"] + "-mlflow")
    sample = _sample(args)
    mlflow.sklearn.save_model(
        model,
        str(work / "credit"),
        signature=infer_signature(sample, model.predict_proba(sample)),
        pyfunc_predict_fn="predict_proba",
        serialization_format="cloudpickle",  # skops would need our types listed as trusted
    )
    saved = time.perf_counter() - t

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, DoubleType

    t = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("bench-batch-spark")
        .config("spark.driver.memory", "3g")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    udf = mlflow.pyfunc.spark_udf(
        spark, str(work / "credit"), result_type=ArrayType(DoubleType()), env_manager="local"
    )
    started = time.perf_counter() - t

    t = time.perf_counter()
    df = spark.read.parquet(args["data"])
    proba = udf(F.struct(*[F.col(c) for c in args["features"]]))
    scored = df.select(F.col("application_id"), proba.alias("p")).select(
        "application_id",
        F.when(F.col("p")[1] > F.col("p")[0], 1).otherwise(0).alias("prediction"),
        F.col("p")[0].alias("proba_0"),
        F.col("p")[1].alias("proba_1"),
    )
    scored.write.mode("overwrite").parquet(args["out"])
    seconds = time.perf_counter() - t
    rows = spark.read.parquet(args["out"]).count()
    spark.stop()
    assert rows == args["rows"], rows
    import pyspark

    notes = (
        f"pyspark {pyspark.__version__} local[2], mlflow {mlflow.__version__} spark_udf; "
        f"excl. session start {started:.1f} s, model save {saved:.1f} s"
    )
    print("RESULT " + json.dumps({"seconds": seconds, "notes": notes}), flush=True)


def _sample(args: dict[str, Any]) -> Any:
    import pyarrow.parquet as pq

    first = sorted(Path(args["data"]).glob("*.parquet"))[0]
    return pq.ParquetFile(first).read_row_group(0, columns=args["features"]).slice(0, 100).to_pandas()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
