"""PyTorch -> ONNX with ``torch.onnx.export``, plus the classifier head the torch flavor applies.

The torch.export-based exporter (``dynamo=True``, onnxscript; works offline) handles nn.Modules
and the modules of loaded ``.pt2`` programs; TorchScript modules only go through the legacy
TorchScript exporter (``dynamo=False``, deprecated by torch but still shipped). The batch axis is
dynamic. For classifiers the graph then gets what ``predict_proba``/``predict`` do in the flavor:
softmax over the logits (sigmoid -> [1-p, p] for one column) and label = classes[argmax].
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from modelport.flavors.base import ConversionUnsupported, Converted, require
from modelport.flavors.trees_onnx import GraphBuilder
from modelport.schema import Batch, Signature

OPSET = 18
_EXAMPLE_ROWS = 8


def convert(raw: Any, signature: Signature, sample: Batch | None, info: dict[str, Any]) -> Converted:
    torch = require("torch", "torch")
    require("onnx", "onnx")
    dtype = str(info.get("dtype", "float32"))
    example = _example(torch, signature, sample, dtype)
    task = info.get("task")
    with torch.inference_mode():
        out = raw(example)
    out = out[0] if isinstance(out, (tuple, list)) else out
    if not isinstance(out, torch.Tensor):
        raise ConversionUnsupported(
            f"The model returns {type(out).__name__}, not a tensor; its ONNX twin needs a tensor output."
        )
    if task == "classifier" and (out.ndim > 2 or not out.is_floating_point()):
        raise ConversionUnsupported(
            f"A classifier must return (rows, classes) float logits to be converted; got shape "
            f"{tuple(out.shape)} {out.dtype}. The native runtime keeps working."
        )
    proto, exporter = _export(torch, raw, example)
    _keep_first_output(proto)
    notes = [f"exported with torch.onnx.export ({exporter}), dynamic batch axis"]
    classes = info.get("classes") if task == "classifier" else None
    if task == "classifier":
        k = 1 if out.ndim == 1 else int(out.shape[1])
        _classifier_head(proto, k, classes, np.dtype(str(out.dtype).removeprefix("torch.")))
        notes.append("softmax (sigmoid for one logit) and argmax label appended to the graph")
    require("onnx", "onnx").checker.check_model(proto)
    return Converted(model=proto, task=task, classes=classes, notes=notes)


def _example(torch: Any, signature: Signature, sample: Batch | None, dtype: str) -> Any:
    """A few input rows (at least two: a batch axis of 1 would be specialised away)."""
    from modelport.flavors.torch import to_tensor

    if sample is not None and sample.n_rows > 0:
        x = to_tensor(torch, sample, dtype)[:_EXAMPLE_ROWS]
    elif signature.tensor is not None:
        spec = signature.tensor
        shape = [2 if s < 0 else s for s in spec.shape]
        kind = spec.dtype if np.dtype(spec.dtype).kind != "f" else dtype
        x = torch.zeros(shape, dtype=getattr(torch, np.dtype(kind).name))
    else:
        x = torch.zeros((2, len(signature.columns or ())), dtype=getattr(torch, dtype))
    return torch.cat([x, x]) if x.shape[0] < 2 else x


def _export(torch: Any, module: Any, example: Any) -> tuple[Any, str]:
    onnx = require("onnx", "onnx")
    errors = []
    with _quiet():
        if not isinstance(module, torch.jit.ScriptModule):
            try:
                program = torch.onnx.export(
                    module,
                    (example,),
                    dynamo=True,
                    dynamic_shapes=({0: torch.export.Dim.DYNAMIC},),
                    input_names=["input"],
                    opset_version=OPSET,
                    optimize=True,
                    verbose=False,
                    report=False,
                )
                return program.model_proto, "dynamo"
            except Exception as exc:  # noqa: BLE001 - fall back to the TorchScript exporter below
                errors.append(f"dynamo: {str(exc).splitlines()[0][:300]}")
        buf = io.BytesIO()
        try:
            torch.onnx.export(
                module,
                (example,),
                buf,
                dynamo=False,
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                opset_version=17,
            )
        except Exception as exc:
            errors.append(f"torchscript: {str(exc).splitlines()[0][:300]}")
            raise ConversionUnsupported(
                f"torch.onnx.export could not convert {type(module).__name__} ({'; '.join(errors)}). "
                "The native runtime keeps working."
            ) from exc
    return onnx.load_from_string(buf.getvalue()), "torchscript"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence exporter chatter: deprecation warnings, "exporting in training mode" for the
    modules of loaded .pt2 programs (captured in eval mode already), and one log line per
    torchvision op when torchvision is not installed."""
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _keep_first_output(proto: Any) -> None:
    """The flavor predicts with the first output of a module that returns several."""
    while len(proto.graph.output) > 1:
        proto.graph.output.pop()


def _classifier_head(proto: Any, k: int, classes: list[Any] | None, dtype: np.dtype) -> None:
    g = GraphBuilder(dtype)
    graph = proto.graph
    logits = graph.output[0].name
    if k == 1:
        g.node("Reshape", [logits, g.const("column", [-1, 1], np.int64)], ["logit_column"])
        logits = "logit_column"
    n = g.probabilities(logits, "probabilities", "sigmoid" if k == 1 else "softmax", k)
    outputs = [
        *g.label("probabilities", classes),
        g.helper.make_tensor_value_info("probabilities", g.float_type(), [None, n]),
    ]
    taken = {v for node in graph.node for v in (*node.input, *node.output)} | {
        i.name for i in graph.initializer
    }
    clash = taken & ({v for node in g.nodes for v in node.output} | {i.name for i in g.inits})
    if clash:
        raise ConversionUnsupported(f"The exported graph already uses the names {sorted(clash)}.")
    graph.node.extend(g.nodes)
    graph.initializer.extend(g.inits)
    del graph.output[:]
    graph.output.extend(outputs)
