"""Celery tasks, the top layer: one thin module per part, each task calls that part's services.

- planning: solve runs, debounced re-plans, the day-ahead fan-out, the stuck-run reaper
- grid: offer builds, re-plans under activation shares, freezing offers at gate closure
- hub: the command relay and its sweep
- telemetry: partitions ahead, retention of raw rows, daily roll-ups
- inputs: the drop-folder importer and forecast scoring

The parts never import this package: they announce work with Django signals and `receivers`
sends the messages. The beat schedule is declared once in settings.PERIODIC_TASKS (`periodic`).
"""
