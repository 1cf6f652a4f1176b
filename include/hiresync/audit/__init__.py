"""Record lineage, trace and explain, OpenLineage events."""
