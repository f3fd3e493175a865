"""Start-up hooks that change LocalStack's or moto's own code, one module per upstream module they change
(``stepfunctions`` changes ``localstack.services.stepfunctions``, ``dynamodb`` moto's ``moto.dynamodb``, ...). Each
targets the versions pinned in constraints/localstack.txt (localstack-core 2026.3.0, moto-ext 5.1.25). See
localcloud/README.md for the list.
"""
