"""Signatures: infer from sample data, validate and coerce a batch."""

from modelport.schema.batch import Batch
from modelport.schema.frames import to_pandas_frame
from modelport.schema.signature import ColumnSpec, Signature, TensorSpec, infer_signature
from modelport.schema.validate import prepare

__all__ = [
    "Batch",
    "ColumnSpec",
    "Signature",
    "TensorSpec",
    "infer_signature",
    "prepare",
    "to_pandas_frame",
]
