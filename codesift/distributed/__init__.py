"""The cluster stage: index many repositories on a Ray cluster, search the result on a laptop.

    codesift cluster-index TREES... --out DIR     # job.py: Ray Data, GPU actors, Parquet shards
    codesift import-shards DIR --index-dir IDX    # importer.py: the shards into a local index

Modules: `plan` (the trees, their content keys and parts, which part embeds which text),
`workers` (what runs on the Ray workers: chunk, embed, write), `job` (the driver), `shards` (the
Parquet columns), `layout` (the shards folder), `importer` (shards into the index's store). Ray
and pyarrow are the `ray` extra's, imported only where a job runs or shards are read.
"""
