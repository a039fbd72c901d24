"""Run reports: one self-contained HTML file per run (charts as inline SVG, thumbnails as data URIs).

`render.write(manifest.load(run_id), out)` is the API; `dataengine report RUN_ID` the command.
"""
