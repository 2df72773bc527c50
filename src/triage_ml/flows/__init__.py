"""Thin Prefect flows: each reads as a table of contents of one job."""
