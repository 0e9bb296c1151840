"""K2 beside the field's engines on the same rows: QuestDB, chDB (MergeTree) and DuckDB over a
native sorted table, query by query, with the answers checked against each other.
"""
