"""Everything that talks to an outside system (vendor APIs, target databases and APIs).

No Airflow imports here: connectors take plain settings, so the CLI, the tests and the DAGs
share them.
"""
