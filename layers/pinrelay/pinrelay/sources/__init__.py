"""Mappings from what a shop platform sends to Pinterest events (plain Python, no AWS)."""
