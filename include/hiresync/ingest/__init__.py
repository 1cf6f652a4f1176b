"""Getting payloads in: run-scoped staging, the webhook receiver and its inbox, file drops."""
