"""Restore ordering and the plan and report data types."""
