"""Channels: one module per messaging channel (inbound + outbound sides)."""
