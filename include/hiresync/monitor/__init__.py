"""Sync status, issues and alerts."""
