"""Disaster recovery: the topic configuration backup and restore (export-topics, apply-topics)."""
