"""The batch engine's Arrow path only: an ONNX classifier's text inputs scored once per distinct
value (:class:`TextCodes`), the graph cut where its row-wise text-only part ends."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from modelport.flavors.base import require
from modelport.flavors.onnx import OnnxModel, feed
from modelport.flavors.onnx_graph import elem_type

# Nodes whose output row i depends on input row i alone (with the axis checks in _row_wise).
_ROW_WISE = frozenset(
    {
        "ArrayFeatureExtractor", "And", "Cast", "CategoryMapper", "Concat", "Equal", "Flatten",
        "Gather", "Identity", "IsNaN", "LabelEncoder", "Not", "OneHotEncoder", "Or", "Reshape",
        "Where", "Xor",
    }
)  # fmt: skip


_MAX_COMBINATIONS = 4096  # distinct text combinations evaluated per dictionary set, at most


_CHECK_ROWS = 256  # rows of the first chunk scored both ways; any difference turns the cut off


class TextCodes:
    """A classifier's graph cut where the preprocessing of its text inputs ends.

    Parquet hands text columns over dictionary-encoded: a few distinct values and an integer code
    per row. The graph's text-only part (null checks, label and one-hot encoding: a third of a
    tree model's time) is run once per combination of distinct values; the rest of the graph runs
    per row, with that part's result gathered by the rows' codes. Every node of the text part must
    be row-wise, and the first call checks the result against the whole graph on its first rows;
    :meth:`predict_proba` returns None wherever it cannot answer (the caller scores normally).
    """

    def __init__(self, loaded: OnnxModel) -> None:
        onnx = require("onnx", "onnx")
        ort = require("onnxruntime", "onnx")
        session = loaded.raw
        proto = onnx.shape_inference.infer_shapes(onnx.load(session._model_path))
        graph = proto.graph
        weights = {t.name for t in graph.initializer}
        inputs = [i.name for i in graph.input if i.name not in weights]
        text = {i.name for i in graph.input if i.name in inputs and elem_type(i) == onnx.TensorProto.STRING}
        ranks = {
            v.name: len(v.type.tensor_type.shape.dim)
            for v in [*graph.value_info, *graph.input]
            if v.type.WhichOneof("value") == "tensor_type" and v.type.tensor_type.HasField("shape")
        }
        deps: dict[str, frozenset[str] | None] = {n: frozenset([n]) if n in text else None for n in inputs}
        frontier: list[str] = []
        for node in graph.node:  # topologically sorted
            srcs = [deps.get(x, frozenset()) for x in node.input if x]
            mixed = any(s is None for s in srcs)
            d = None if mixed else frozenset().union(*(s for s in srcs if s is not None))
            if d and not _row_wise(node, ranks.get(node.input[0])):
                raise ValueError(f"{node.op_type} in the text part")
            for o in node.output:
                deps[o] = d
            if mixed:
                frontier += [x for x in node.input if deps.get(x) and x not in frontier]
        proba = next(o for o in graph.output if o.name == loaded.proba_output)
        if not frontier or any(f in text for f in frontier) or elem_type(proba) is None:
            raise ValueError("no text part to cut")
        used = sorted(set().union(*(deps[f] or () for f in frontier)))
        cut = onnx.utils.Extractor(proto)
        head = cut.extract_model(used, frontier)
        rest = cut.extract_model([n for n in inputs if n not in text] + frontier, [loaded.proba_output])
        opts = session.get_session_options()
        providers = ["CPUExecutionProvider"]
        self._head = ort.InferenceSession(head.SerializeToString(), opts, providers=providers)
        self._rest = ort.InferenceSession(rest.SerializeToString(), opts, providers=providers)
        self._loaded, self._text, self._frontier = loaded, used, frontier
        self._specs = {name: (dtype, rank) for name, dtype, rank in loaded.inputs}
        self._heads: dict[tuple[Any, ...], list[np.ndarray]] = {}
        self._checked: bool | None = None
        self._lock = threading.Lock()

    def predict_proba(
        self, columns: dict[str, np.ndarray], text: dict[str, tuple[np.ndarray, np.ndarray]], n: int
    ) -> np.ndarray | None:
        """Probabilities for ``n`` rows: ``columns`` the model's other inputs, ``text`` its text
        inputs as (distinct values, a code per row); None where the cut does not apply."""
        if self._checked is False or any(name not in text for name in self._text):
            return None
        sizes = [len(text[name][0]) for name in self._text]
        if int(np.prod(sizes)) > _MAX_COMBINATIONS:
            return None
        key = tuple(tuple(text[name][0].tolist()) for name in self._text)
        heads = self._heads.get(key)
        if heads is None:
            grid = np.indices(sizes).reshape(len(sizes), -1)
            feeds = {
                name: self._feed(name, text[name][0][g]) for name, g in zip(self._text, grid, strict=True)
            }
            heads = self._head.run(self._frontier, feeds)
            if any(len(h) != grid.shape[1] for h in heads):
                self._checked = False  # not one result per combination: not row-wise after all
                return None
            if len(self._heads) > 16:
                self._heads.clear()
            self._heads[key] = heads
        code = np.zeros(n, dtype=np.int64)
        for name, size in zip(self._text, sizes, strict=True):
            code *= size
            code += text[name][1]
        feeds = self._numeric(columns)
        feeds.update({f: h[code] for f, h in zip(self._frontier, heads, strict=True)})
        out = self._rest.run([self._loaded.proba_output], feeds)[0]
        if self._checked is None and not self._check(columns, text, out, n):
            return None
        return np.column_stack([1.0 - out, out]) if out.ndim == 1 else out

    def _feed(self, name: str, col: np.ndarray) -> np.ndarray:
        dtype, rank = self._specs[name]
        return feed(col, dtype, rank)

    def _numeric(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: self._feed(name, columns[name]) for name in self._specs if name not in self._text}

    def _check(
        self, columns: dict[str, np.ndarray], text: dict[str, tuple[np.ndarray, np.ndarray]], out: Any, n: int
    ) -> bool:
        """The first rows scored by the whole graph must give exactly the same result."""
        with self._lock:
            if self._checked is None:
                m = min(n, _CHECK_ROWS)
                feeds = self._numeric({k: v[:m] for k, v in columns.items()})
                for name in self._text:
                    values, codes = text[name]
                    feeds[name] = self._feed(name, values[codes[:m]])
                whole = self._loaded.raw.run([self._loaded.proba_output], feeds)[0]
                self._checked = bool(np.array_equal(whole, out[:m]))
        return self._checked


def _row_wise(node: Any, rank: int | None) -> bool:
    """Whether ``node`` keeps rows apart (its first input's ``rank`` resolves a negative axis)."""
    if node.op_type not in _ROW_WISE or node.domain not in ("", "ai.onnx", "ai.onnx.ml"):
        return False
    axis = next((a.i for a in node.attribute if a.name == "axis"), None)
    if axis is not None and axis < 0 and rank:
        axis += rank
    if node.op_type in ("Concat", "Gather"):
        return axis is not None and axis >= 1
    if node.op_type == "Flatten":
        return axis is None or axis >= 1
    return True


def text_codes(loaded: Any) -> TextCodes | None:
    """A :class:`TextCodes` for an ONNX classifier with text inputs, else None."""
    if not isinstance(loaded, OnnxModel) or loaded.task != "classifier" or not loaded.proba_output:
        return None
    if not getattr(loaded.raw, "_model_path", None) or all(t is not np.object_ for _, t, _ in loaded.inputs):
        return None
    try:
        return TextCodes(loaded)
    except Exception:  # noqa: BLE001 - a graph it cannot cut runs whole, as everywhere else
        return None
