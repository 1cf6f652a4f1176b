"""Into the hub: what a run consumed, identity resolution (and the load itself)."""
