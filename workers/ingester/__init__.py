"""The ingester: Hyperliquid WebSocket → typed events → batches on the Redis broker.

Module map (one concept each): ``protocol``/``decoders`` (pure parsing), ``dedup``, ``gaps``,
``subscriptions`` + ``pacing``, ``backoff``, ``batcher``, ``outbox`` (bounded buffer),
``broker`` (Celery message building), ``publisher`` (the broker thread), ``cache`` (latest
state in Redis), ``session`` (per-connection record), ``pipeline`` (frame → events → batches),
``connection`` (the socket loop), ``universe``/``listings`` (REST meta), ``health``, ``service``,
``cli``. Positions beyond the WebSocket users are polled by the workers, not here.
"""
