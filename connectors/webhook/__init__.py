"""Push vendors: signed webhook deliveries (profile and signature check); the receiver is hiresync.ingest.webhook."""
