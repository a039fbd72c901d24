"""A real local Ray cluster for tests: the helpers live in `dataengine.bench.local_cluster` (`dataengine bench
cluster` starts the same three-node cluster to check the capacity planner)."""

from dataengine.bench.local_cluster import LocalCluster, free_port, start_head

__all__ = ["LocalCluster", "free_port", "start_head"]
