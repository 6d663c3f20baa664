"""Deployment templates generated from a MangumWS registry."""

from .template import sam_template

__all__ = ["sam_template"]
