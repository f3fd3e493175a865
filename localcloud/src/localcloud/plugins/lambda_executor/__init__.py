"""The ``process`` Lambda executor: each execution environment is local OS processes (no Docker).

``executor`` is LocalStack's side (the RuntimeExecutor); ``init`` is each environment's supervisor process, with
``sandbox`` (its runtime child, limits and results) and ``runtime_api`` (the Lambda Runtime API it serves);
``forkserver`` is a script run under a runtime's interpreter that forks runtimes with boto3 and the rest imported.
Nothing is imported here: ``init`` and ``forkserver`` run in processes of their own.
"""
