"""Helpers every layer shares: ids, the working row, storage, output schemas, metrics and stage statistics.

Nothing here imports a stage, a reader or a command."""
