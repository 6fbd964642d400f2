"""Imports from other analytics tools, and export in Plausible's format (issue #22)."""
