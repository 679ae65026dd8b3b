"""Notification delivery: pure building blocks — webhook signing (``signing``), the SSRF
guard (``egress``) and the retry policy (``retry_policy``). Importable without a broker; the
channels and the delivery task build on them."""
