"""The Celery backend: Celery carries execution ids, the PostgreSQL ledger stays the one truth.

`app` builds the Celery application from the settings, `backend` is what the dispatcher and
the runner hand work to, `process` runs it in each pool process, `reaper` re-sends what a dead
worker or a lost message left behind, and `worker` is `spine worker start --backend celery`.
"""
