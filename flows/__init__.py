"""Prefect flows and the coalign command line."""
