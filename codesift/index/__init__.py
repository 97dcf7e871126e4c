"""The index stage: the SQLite store, the incremental indexer and its derived dense-vector cache."""
