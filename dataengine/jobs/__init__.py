"""Pipeline runs as Ray jobs: submitting one (`ray_jobs`) and the scheduler that submits scheduled runs
(`scheduler`; the crontab schedule itself is `core.cron`, part of the pipeline spec)."""
