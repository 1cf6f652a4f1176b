"""Out of the hub: the outbox relay to the targets and the workflow events."""
