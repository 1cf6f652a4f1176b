"""Settings, configured sources, YAML loading and connections: what every stage reads."""
