"""``hyperwatch replay``: play recorded frames (``runtime/recording.py``) back through the
ingester's pipeline into the database (``player``), or describe them (``stats``)."""
