"""Airflow plugins of the provider (entry point ``airflow.plugins``)."""
