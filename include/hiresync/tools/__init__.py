"""Commands for people, built on the pipeline: connector check, quarantine list and replay."""
