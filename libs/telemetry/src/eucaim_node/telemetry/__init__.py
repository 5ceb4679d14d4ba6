"""Logs (and, later, traces and metrics) set up the same way in every service."""

from .logs import configure_logging

__all__ = ["configure_logging"]
