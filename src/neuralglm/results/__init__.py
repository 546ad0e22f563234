"""Fitted-model values, summaries and serialization."""
