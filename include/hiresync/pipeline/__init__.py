"""The steps of one source run: extract -> validate -> map -> load -> deliver -> publish.

Each step takes a RunContext (source name + run id, everything else derived) and hands its
output to the next through run-scoped staging files, so the Airflow DAG and the CLI call the
very same functions and pass only references.
"""
