"""Ops (stages) by name: row ops run as Ray Data map_batches; dedup, translate, tile, score and export run
after the inputs are materialised and counted (filter is a row op that comes after score)."""

from dataengine.ops.base import Op, StageConfig
from dataengine.ops.dedup import DedupConfig
from dataengine.ops.export import ExportConfig
from dataengine.ops.filter import ScoreFilter
from dataengine.ops.image import ImageCheck
from dataengine.ops.language import LanguageRoute
from dataengine.ops.resolve import Resolve
from dataengine.ops.text import TextClean

ROW_OPS: dict[str, type[Op]] = {op.name: op for op in (Resolve, ImageCheck, TextClean, LanguageRoute, ScoreFilter)}

__all__ = ["ROW_OPS", "DedupConfig", "ExportConfig", "Op", "StageConfig"]
