"""``kiln export``: a saved model folder's whole prediction path as a file another runtime serves.

It needs no workspace: it reads a model folder and writes one file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from kiln.errors import KilnError

if TYPE_CHECKING:
    import onnx

__all__ = ["FORMATS", "export"]

FORMATS = ("onnx",)


def export(
    model_dir: Path, *, output_format: str, out: Path, opset: int | None, console: Console
) -> Path:
    """Export the model in ``model_dir`` to ``out``; say what was written, inputs and outputs."""
    from kiln.cli._model import _load

    fmt = output_format.lower()
    if fmt not in FORMATS:
        raise KilnError(
            f"--format {output_format!r}: Kiln exports {', '.join(FORMATS)} (e.g. --format onnx)"
        )
    from kiln.model import export_onnx

    model = _load(model_dir)
    written = export_onnx(model, out, opset=opset)
    import onnx  # installed: export_onnx needs it

    proto = onnx.load(str(written))
    version = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    size = written.stat().st_size
    console.print(
        f"wrote {escape(str(written))} ({size:,} bytes): {escape(model.trainer.model_type)} as "
        f"ONNX opset {version}"
    )
    console.print(f"  inputs:  {escape(', '.join(_typed(v) for v in proto.graph.input))}")
    console.print(f"  outputs: {escape(', '.join(_typed(v) for v in proto.graph.output))}")
    return written


def _typed(value: onnx.ValueInfoProto) -> str:
    """``name (double[N,1])`` for a graph input or output."""
    import onnx

    tensor = value.type.tensor_type
    elem = onnx.helper.tensor_dtype_to_string(tensor.elem_type).removeprefix("TensorProto.")
    dims = ",".join(d.dim_param or str(d.dim_value) for d in tensor.shape.dim)
    return f"{value.name} ({elem.lower()}[{dims}])"
