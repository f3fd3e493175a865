"""Entry points LocalStack discovers (localcloud/pyproject.toml): the `process` Lambda executor, the `dynamodb:moto` and
`cognito-idp:moto` providers and the `localcloud` gateway server. Each loads its module only when LocalStack selects
it."""

from localstack.runtime.server.core import RuntimeServer, RuntimeServerPlugin
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.plugins import Service, aws_provider


class ProcessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    """Runs each Lambda execution environment as local OS processes (selected by LAMBDA_RUNTIME_EXECUTOR=process)."""

    name = "process"

    def load(self, *args, **kwargs):
        from localcloud.plugins.lambda_executor.executor import ProcessRuntimeExecutor

        return ProcessRuntimeExecutor


@aws_provider(api="dynamodb", name="moto")
def dynamodb_moto():
    """DynamoDB served by LocalStack's bundled moto (selected by PROVIDER_OVERRIDE_DYNAMODB=moto)."""
    from localstack.services.moto import MotoFallbackDispatcher

    from localcloud.plugins.dynamodb import MotoDynamoDBProvider

    provider = MotoDynamoDBProvider()
    return Service.for_provider(provider, dispatch_table_factory=MotoFallbackDispatcher)


@aws_provider(api="cognito-idp", name="moto")
def cognito_idp_moto():
    """Cognito user pools served by LocalStack's bundled moto (selected by PROVIDER_OVERRIDE_COGNITO_IDP=moto); the
    open-source edition has no cognito-idp provider. Targets LocalStack 2026.3.0 / moto-ext 5.1.25."""
    from localstack.services.moto import MotoFallbackDispatcher

    from localcloud.plugins.cognito_idp import build_provider

    provider = build_provider()
    return Service.for_provider(provider, dispatch_table_factory=MotoFallbackDispatcher)


class ThreadedRuntimeServerPlugin(RuntimeServerPlugin):
    """The gateway served by a thread per connection instead of twisted (selected by GATEWAY_SERVER=localcloud)."""

    name = "localcloud"

    def load(self, *args, **kwargs) -> RuntimeServer:
        from localcloud.plugins.gateway_server import ThreadedRuntimeServer

        class Server(ThreadedRuntimeServer, RuntimeServer):
            pass

        return Server()
