"""The stages, by op name: what a pipeline's `stages:` list names. A new stage is one file in this package and
one line here (`docs/stages.md` shows a whole example)."""

from dataengine.ops.base import BatchStage, DatasetStage, RowStage, RunContext, SignatureStage, Stage, StageConfig
from dataengine.ops.blocklist import Blocklist
from dataengine.ops.dedup import Dedup
from dataengine.ops.export import Export
from dataengine.ops.filter import ScoreFilter
from dataengine.ops.image import ImageCheck
from dataengine.ops.language import LanguageRoute
from dataengine.ops.quality import Quality
from dataengine.ops.resolve import Resolve
from dataengine.ops.score import Score
from dataengine.ops.text import TextClean
from dataengine.ops.tile import Tile
from dataengine.ops.translate import Translate

REGISTRY: dict[str, type[Stage]] = {
    stage.name: stage
    for stage in (
        Resolve,
        ImageCheck,
        TextClean,
        Blocklist,
        LanguageRoute,
        Dedup,
        Translate,
        Quality,
        Tile,
        Score,
        ScoreFilter,
        Export,
    )
}


def stage_for(config: StageConfig) -> type[Stage]:
    """The class that runs a stage config: its op's registered one, or the variant its settings choose."""
    return config.variant() or REGISTRY[config.op]


__all__ = [
    "REGISTRY",
    "BatchStage",
    "DatasetStage",
    "RowStage",
    "RunContext",
    "SignatureStage",
    "Stage",
    "StageConfig",
    "stage_for",
]
