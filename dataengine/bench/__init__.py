"""Benchmarks and evaluations (`dataengine bench ...`, `dataengine eval ...`): figures for BENCHMARKS.md, apart
from the product code they measure."""
