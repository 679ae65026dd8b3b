"""Hyperliquid's wire protocol, pure: frames and REST answers → typed events.

Shared by the ingester (WebSocket frames) and the beat jobs that poll ``/info`` (positions
beyond the WebSocket user limit), so it lives below both.
"""
