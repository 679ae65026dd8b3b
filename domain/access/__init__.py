"""Who may call ``hyperwatch api``: subscribers' API keys (``api_keys``)."""
