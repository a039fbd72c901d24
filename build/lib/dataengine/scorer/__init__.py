"""The InternVL quality scorer: model loading, scoring, training (Ray Train) and serving (Ray Serve)."""
