"""The edge runtime: run an exported bundle with numpy and onnxruntime alone.

>>> from modelport.edge import load_bundle          # doctest: +SKIP
>>> model = load_bundle("credit-edge/")               # doctest: +SKIP
>>> model.predict_proba([{"income": 52000.0, ...}])   # doctest: +SKIP

Compilation and export (``modelport.edge.compile``, ``modelport.edge.export``) need the full
library; this package's ``__init__`` and ``runtime`` import nothing beyond numpy/onnxruntime.
"""

from modelport.edge.runtime import EdgeModel, load_bundle

__all__ = ["EdgeModel", "load_bundle"]
