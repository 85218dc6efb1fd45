"""Squeezer: self-hosted file compression."""

__version__ = "0.1.0"
