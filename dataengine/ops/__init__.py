"""Ops (stages) by name: row ops run as Ray Data map_batches; dedup, tile and export run after the inputs
are materialised and counted."""

from dataengine.ops.base import Op, StageConfig
from dataengine.ops.dedup import DedupConfig
from dataengine.ops.export import ExportConfig
from dataengine.ops.image import ImageCheck
from dataengine.ops.language import LanguageRoute
from dataengine.ops.resolve import Resolve
from dataengine.ops.text import TextClean

ROW_OPS: dict[str, type[Op]] = {op.name: op for op in (Resolve, ImageCheck, TextClean, LanguageRoute)}

__all__ = ["ROW_OPS", "DedupConfig", "ExportConfig", "Op", "StageConfig"]
