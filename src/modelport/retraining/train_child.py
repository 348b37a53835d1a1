"""The training subprocess: ``python -m modelport.retraining.train_child MODULE:FUNC BASE DATA OUT``.

Imports the user's ``train(df) -> fitted model`` from ``BASE`` (the policy file's folder), calls it
on the Parquet file ``DATA`` and pickles the model to ``OUT`` with joblib. Running in its own
process, a crash, a hang (killed at the policy's timeout) or a memory blow-up of the user's code
never touches the caller, and whatever it imports stays out of the caller's process.
"""

from __future__ import annotations

import importlib
import sys


def main(argv: list[str]) -> int:
    entrypoint, base, data, out = argv
    sys.path.insert(0, base)
    module, _, func = entrypoint.partition(":")
    train = getattr(importlib.import_module(module), func)
    import joblib
    import pandas as pd

    model = train(pd.read_parquet(data))
    if model is None:
        print(f"{entrypoint} returned None instead of a fitted model", file=sys.stderr)
        return 3
    joblib.dump(model, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
