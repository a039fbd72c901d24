"""Text quality without a model: pure functions (no Ray, no stage) that the `text` stage and reports share."""

from dataengine.quality.rules import (
    CaptionRules,
    Repetition,
    RepetitionSettings,
    caption_rules,
    repetition,
)

__all__ = ["CaptionRules", "Repetition", "RepetitionSettings", "caption_rules", "repetition"]
