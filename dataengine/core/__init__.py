"""Helpers every layer shares: ids, the working row, storage, output schemas, metrics and stage statistics, config
models, text and image helpers, crontab schedules.

Nothing here imports a stage, a reader or a command."""
