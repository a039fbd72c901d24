"""dataengine: a bilingual (English/Chinese) data engine for vision-language models, on Ray."""

__version__ = "0.1.0"
