"""The loop's steps and the batch engine: sources → ingest → clean → decide → fit → promote, each
answer of the source processed exactly once (``engine.py``); ``train.py`` runs it for `mlops train`,
``promote.py`` also backs `mlops promote` and `mlops rollback`."""
