"""PyTorch ``nn.Module``: saved as a ``torch.export`` program (default) or as state dict + class.

Why ``torch.export`` rather than TorchScript: in torch 2.13 ``torch.jit.script``, ``trace``,
``save`` and ``load`` all emit ``DeprecationWarning`` ("switch to torch.compile or
torch.export"); ``torch.export`` is the supported way to capture a module's graph without its
Python source. The program is exported in eval mode from a few sample rows with a dynamic batch
axis, so it needs ``sample=``. Its caveat (torch's own words: .pt2 files "may not be usable in
newer versions of PyTorch") is covered by the torch version recorded with every model.

``{"format": "state_dict"}`` stores only the weights (loaded back with ``weights_only=True``, no
pickle of code) plus an importable ``module:QualName`` and JSON ``init_kwargs``: the most durable
choice across torch versions, for models whose class ships with the serving code. Existing
TorchScript files (``torch.jit.ScriptModule``) keep ``{"format": "torchscript"}``.

Other options: ``task`` ("classifier" | "regressor") and ``classes``. A classifier returns logits:
``predict_proba`` is their softmax (sigmoid for one column) and ``predict`` the argmax label.
The process-wide torch thread count is left alone: it is the host application's to set.
"""

from __future__ import annotations

import importlib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import FlavorError
from modelport.flavors.base import Converted, Saved, check_threads, classes_list, mro_modules, require
from modelport.schema import Batch, Signature

NAME = "torch"
FORMAT_VERSION = 1
PACKAGES = ("torch", "numpy")
FILE_SUFFIXES = (".pt2", ".pt", ".pth")
_FILES = {"export": "model.pt2", "torchscript": "model.pt", "state_dict": "state_dict.pt"}
OPTIONS = ("format", "task", "classes", "init_kwargs")
_EXAMPLE_ROWS = 8


def detect(obj: Any) -> bool:
    return "torch" in mro_modules(obj) and (
        hasattr(obj, "forward") or type(obj).__name__ == "ExportedProgram"
    )


def save(obj: Any, path: Path, sample: Batch | None, **options: Any) -> Saved:
    torch = require("torch", "torch")
    exported = isinstance(obj, torch.export.ExportedProgram)
    scripted = isinstance(obj, torch.jit.ScriptModule)
    fmt = options.get("format", "torchscript" if scripted else "export")
    if fmt not in _FILES:
        raise TypeError(f"format must be one of {', '.join(_FILES)}, got {fmt!r}")
    if (exported and fmt != "export") or (scripted and fmt != "torchscript"):
        only = "export" if exported else "torchscript"
        raise TypeError(f"a {type(obj).__name__} can only be saved with format={only!r}")
    if "init_kwargs" in options and fmt != "state_dict":
        raise TypeError("init_kwargs is only used with format='state_dict'")
    classes = classes_list(options.get("classes"))
    task = options.get("task", "classifier" if classes is not None else None)
    if task not in (None, "classifier", "regressor") or (classes is not None and task != "classifier"):
        raise TypeError(
            f"task must be 'classifier' or 'regressor' (classes imply 'classifier'), got {task!r}"
        )
    params = obj.state_dict.values() if exported else [*obj.parameters(), *obj.buffers()]
    dtype = next((str(p.dtype).removeprefix("torch.") for p in params if p.is_floating_point()), "float32")
    info: dict[str, Any] = {
        "format": fmt,
        "file": _FILES[fmt],
        "task": task,
        "classes": classes,
        "dtype": dtype,
    }
    file = path / _FILES[fmt]
    packages: tuple[str, ...] = ()
    if fmt == "state_dict":
        info.update(_class_info(obj, options.get("init_kwargs") or {}))
        torch.save(obj.state_dict(), file)
        packages = _distributions(type(obj).__module__)
    elif fmt == "export":
        program = obj if exported else _export(torch, obj, sample, dtype)
        torch.export.save(program, file)
    else:
        torch.jit.save(obj if scripted else _script(torch, obj, sample, dtype), file)
    return Saved(task=task, info=info, packages=packages)


def load(path: Path, info: dict[str, Any], threads: int | None = None) -> Any:
    """The saved module in eval mode. ``threads`` is checked but not applied: torch's thread count
    (``torch.set_num_threads``) belongs to the whole process, not to one model."""
    torch = require("torch", "torch")
    check_threads(threads)
    fmt = info.get("format", "export")
    file = path / info.get("file", _FILES.get(fmt, ""))
    if fmt == "export":
        # The program was captured in eval mode; its module refuses .eval() and needs none.
        module = torch.export.load(str(file)).module()
    elif fmt == "torchscript":
        module = torch.jit.load(str(file), map_location="cpu").eval()
    elif fmt == "state_dict":
        cls, kwargs = _import_class(info["class"]), info.get("init_kwargs", {})
        try:
            module = cls(**kwargs)
        except TypeError as exc:
            raise FlavorError(
                f"Cannot build {info['class']}(**{kwargs!r}): {exc}. Pass the constructor's "
                "arguments as flavor_options={'format': 'state_dict', 'init_kwargs': {...}}."
            ) from exc
        module.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
        module.eval()
    else:
        raise FlavorError(f"Unknown torch format {fmt!r} in the model record.")
    return _Loaded(module, info)


def to_onnx(raw: Any, signature: Signature, sample: Batch | None, info: dict[str, Any]) -> Converted:
    """The ONNX twin via ``torch.onnx.export``; classifiers get softmax + argmax label in the graph.

    ``sample`` gives the example rows (zeros of the signature's shape without it). Raises
    ``ConversionUnsupported`` when neither exporter can capture the module.
    """
    from modelport.flavors import torch_onnx

    return torch_onnx.convert(raw, signature, sample, info)


def read_file(path: Path) -> Any:
    """A ``.pt2`` exported program or a TorchScript archive; other .pt files need their class."""
    torch = require("torch", "torch")
    if path.suffix.lower() == ".pt2":
        return torch.export.load(str(path))
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            is_script = any("/code/" in f"/{name}" for name in zf.namelist())
        if is_script:
            return torch.jit.load(str(path), map_location="cpu")
    raise FlavorError(
        f"{path.name} is not a torch.export (.pt2) or TorchScript file; a state dict or pickled "
        "module cannot become a model without its Python class. Load the model in Python and "
        "register the nn.Module itself (flavor_options={'format': 'state_dict'} keeps weights + class)."
    )


def _example(torch: Any, sample: Batch | None, dtype: str, how: str) -> Any:
    if sample is None or sample.n_rows == 0:
        raise FlavorError(
            f"Saving a PyTorch model with {how} needs sample=<a few input rows>; "
            "or pass flavor_options={'format': 'state_dict'} with an importable class."
        )
    x = to_tensor(torch, sample, dtype)[:_EXAMPLE_ROWS]
    # torch.export specialises a batch axis of size 1; two rows keep it dynamic.
    return torch.cat([x, x]) if x.shape[0] < 2 else x


def _script(torch: Any, module: Any, sample: Batch | None, dtype: str) -> Any:
    """TorchScript by scripting (keeps control flow), else by tracing the sample rows."""
    was_training = module.training
    module.eval()
    try:
        return torch.jit.script(module)
    except Exception:  # noqa: BLE001 - many modules cannot be scripted; tracing is the fallback
        return torch.jit.trace(module, _example(torch, sample, dtype, "torch.jit.trace"))
    finally:
        module.train(was_training)


def _export(torch: Any, module: Any, sample: Batch | None, dtype: str) -> Any:
    x = _example(torch, sample, dtype, "torch.export")
    was_training = module.training
    module.eval()
    try:
        return torch.export.export(module, (x,), dynamic_shapes=({0: torch.export.Dim.DYNAMIC},))
    except Exception as exc:
        raise FlavorError(
            f"torch.export could not capture {type(module).__name__}: {exc}. Use "
            "flavor_options={'format': 'state_dict'} with an importable class instead."
        ) from exc
    finally:
        module.train(was_training)


def _class_info(obj: Any, init_kwargs: dict[str, Any]) -> dict[str, Any]:
    cls = type(obj)
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        where = "__main__ (a script or notebook)" if cls.__module__ == "__main__" else "a function"
        raise FlavorError(
            f"format='state_dict' needs a class importable by its module path, but "
            f"{cls.__qualname__} is defined in {where}. Move it into a module (e.g. "
            "mypkg/models.py) and import it from there, or use the default format."
        )
    target = f"{cls.__module__}:{cls.__qualname__}"
    if _import_class(target) is not cls:
        raise FlavorError(f"Importing {target} does not give back the class of this model.")
    try:
        json.dumps(init_kwargs)
    except TypeError as exc:
        raise TypeError(f"init_kwargs must be JSON-serialisable: {exc}") from exc
    return {"class": target, "init_kwargs": init_kwargs}


def _import_class(target: str) -> Any:
    module_name, _, qualname = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _distributions(module: str) -> tuple[str, ...]:
    """The installed distribution that ships the model's class, if any (recorded as a requirement)."""
    import importlib.metadata

    dists = importlib.metadata.packages_distributions().get(module.split(".")[0], [])
    return tuple(d for d in dists if d != "torch")


def to_tensor(torch: Any, batch: Batch, dtype: str) -> Any:
    if batch.tensor is not None:
        arr = batch.tensor
        if arr.dtype.kind == "f":
            arr = arr.astype(dtype, copy=False)  # integer tensors (token ids) stay integers
    else:
        arr = batch.to_numpy(np.dtype(dtype))
    if not arr.flags.writeable or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr).copy()
    return torch.from_numpy(arr)


class _Loaded:
    def __init__(self, module: Any, info: dict[str, Any]) -> None:
        self.raw = module
        self.task = info.get("task")
        self.classes = info.get("classes")
        self._dtype = str(info.get("dtype", "float32"))
        self._torch = require("torch", "torch")

    def _forward(self, batch: Batch) -> Any:
        out = self.raw(to_tensor(self._torch, batch, self._dtype))
        return out[0] if isinstance(out, (tuple, list)) else out

    def predict(self, batch: Batch) -> np.ndarray:
        if self.task == "classifier":
            idx = self.predict_proba(batch).argmax(axis=1)
            return idx if self.classes is None else np.asarray(self.classes)[idx]
        with self._torch.inference_mode():
            out = self._forward(batch).numpy()
        return out.reshape(-1) if out.ndim == 2 and out.shape[1] == 1 else out

    def predict_proba(self, batch: Batch) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            logits = self._forward(batch)
            if logits.ndim == 1 or logits.shape[1] == 1:
                p = torch.sigmoid(logits.reshape(-1))
                return torch.stack([1 - p, p], dim=1).numpy()
            return torch.softmax(logits, dim=1).numpy()
