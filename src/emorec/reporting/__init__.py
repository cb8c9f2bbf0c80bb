"""Reporting: the paper's numbers, result tables and plots."""
