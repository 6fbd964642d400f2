"""Background jobs (APScheduler): rollups and raw retention."""
