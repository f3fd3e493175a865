"""A DynamoDB provider with no Java: every operation falls through to moto's DynamoDB backend."""

from localstack.aws.api.dynamodb import DynamodbApi


class MotoDynamoDBProvider(DynamodbApi):
    """Implements nothing itself, so MotoFallbackDispatcher routes each operation to moto."""
