"""The `dataengine` command line. `base` holds `main`, its groups, the console and `--set`; each other module
hangs the commands of one part of the engine on them:

run        run, demo, sample-data
report     runs, inspect, report, review, export internvl
jobs       submit, status
scheduler  scheduler
translate  translate, serve translator, models pull
scorer     train scorer, serve scorer
bench      bench clean/split-read/dedup/tiling/translate/scorer/stages/cluster, eval translation
quality    assess, eval quality, bench quality
plan       plan capacity, plan wall
"""

from dataengine.cli import bench, jobs, plan, quality, report, run, scheduler, scorer, translate  # noqa: F401  (registers them)
from dataengine.cli.base import main

__all__ = ["main"]
