"""The maintenance queue's periodic jobs (scheduled by ``beat_schedule.py``).

``retention`` (old rows and partitions), ``partitions`` (day partitions ahead),
``health_snapshot`` (health measurements into ``health_metrics``), ``positions_poll``
(wallets beyond the WebSocket user limit), ``beat_guard`` (exactly one scheduling beat) and
``hooks`` (the process hooks every worker and beat of this app gets).
"""
