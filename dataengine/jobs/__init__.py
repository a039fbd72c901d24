"""Pipeline runs as Ray jobs: submitting one (`ray_jobs`), crontab schedules (`cron`) and the scheduler that
submits scheduled runs (`scheduler`)."""
