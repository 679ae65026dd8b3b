"""Notification delivery's building blocks: webhook signing (``signing``), the SSRF guard
(``egress``), the retry policy (``retry_policy``) and the channels. Importable without a
broker; the delivery task is ``tasks.notify.deliver``."""
