"""Notification delivery's building blocks: webhook signing (``signing``), the SSRF guard
(``egress``), what a delivery's result means for retrying it (``retry_policy``, on the
schedule of ``runtime.retry``) and the channels. Importable without a broker; the delivery
task is ``tasks.notify.deliver``."""
