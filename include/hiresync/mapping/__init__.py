"""The mapping spec (YAML) and its engine: vendor payload -> canonical record; mapping test and diff."""
