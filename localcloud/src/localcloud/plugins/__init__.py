"""What localcloud adds to LocalStack through its extension points: entry points LocalStack discovers (the ``process``
Lambda executor, the ``dynamodb:moto`` and ``cognito-idp:moto`` providers, three CloudFormation resource types, the
``localcloud`` gateway server) and start-up hooks that add handlers and routes (fault injection, the request meter,
Cognito's JWKS, the garbage collection policy, the hook report). None of it replaces LocalStack's own code: that is
``localcloud.patches``. See localcloud/README.md.

Nothing is imported here: ``localcloud.plugins.lambda_executor.init`` runs as a process of its own, and the standard
library parts (``lambda_executor.sandbox``) are imported by tests and benchmarks without LocalStack.
"""
