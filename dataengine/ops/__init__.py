"""Ops (stages) by name: row ops run as Ray Data map_batches; dedup and export are global steps."""

from dataengine.ops.base import Op, StageConfig
from dataengine.ops.dedup import DedupConfig
from dataengine.ops.export import ExportConfig
from dataengine.ops.image import ImageCheck, ImageConfig
from dataengine.ops.language import LanguageConfig, LanguageRoute
from dataengine.ops.resolve import Resolve, ResolveConfig
from dataengine.ops.text import TextClean, TextConfig

ROW_OPS: dict[str, type[Op]] = {op.name: op for op in (Resolve, ImageCheck, TextClean, LanguageRoute)}
STAGE_CONFIGS: tuple[type[StageConfig], ...] = (
    ResolveConfig, ImageConfig, TextConfig, LanguageConfig, DedupConfig, ExportConfig,
)

__all__ = ["ROW_OPS", "STAGE_CONFIGS", "DedupConfig", "ExportConfig", "Op", "StageConfig"]
