"""The CloudFormation resource types of localcloud.plugins.cognito_resources, as LocalStack registers its own (one plugin per
type, named by the type, loading its provider only when a stack uses it). Targets LocalStack 2026.3.0."""

from localstack.services.cloudformation.resource_provider import (
    CloudFormationResourceProviderPlugin,
    ResourceProvider,
)


class CognitoResourceProviderPlugin(CloudFormationResourceProviderPlugin):
    provider: str  # the class in localcloud.plugins.cognito_resources

    def __init__(self):
        self.factory: type[ResourceProvider] | None = None

    def load(self):
        from localcloud.plugins import cognito_resources

        self.factory = getattr(cognito_resources, self.provider)


class UserPoolProviderPlugin(CognitoResourceProviderPlugin):
    name = "AWS::Cognito::UserPool"
    provider = "UserPoolProvider"


class UserPoolClientProviderPlugin(CognitoResourceProviderPlugin):
    name = "AWS::Cognito::UserPoolClient"
    provider = "UserPoolClientProvider"


class UserPoolGroupProviderPlugin(CognitoResourceProviderPlugin):
    name = "AWS::Cognito::UserPoolGroup"
    provider = "UserPoolGroupProvider"
