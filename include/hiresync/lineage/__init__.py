"""Audit lineage: the record-level trail in the hub (trace, explain) and OpenLineage events."""
