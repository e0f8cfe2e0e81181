"""Household scheduler (pure Python, no Django): see README.md for the JSON contract."""
