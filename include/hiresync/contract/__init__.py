"""The data contract: Great Expectations suites derived from the mapping, custom expectations,
schema-drift freeze and Data Docs."""
