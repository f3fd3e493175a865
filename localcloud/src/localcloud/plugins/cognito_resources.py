"""CloudFormation resource providers for Cognito user pools, their app clients and groups, which LocalStack's
open-source edition leaves out; they call the cognito-idp API that localcloud.plugins.cognito_idp serves with moto.

Targets LocalStack 2026.3.0 (its v2 CloudFormation engine: ``Ref`` is the physical id the engine reads from
``SCHEMA["primaryIdentifier"]``, except for ``AWS::Cognito::UserPoolClient``, whose id is its ClientId by a quirk of
the engine; ``Fn::GetAtt`` reads the model a handler returns; a change to a ``createOnlyProperties`` property replaces
the resource) and moto-ext 5.1.25. As on AWS:

- ``AWS::Cognito::UserPool``: Ref the pool id; GetAtt Arn, ProviderName, ProviderURL, UserPoolId. A change to
  AliasAttributes, UsernameAttributes or UsernameConfiguration replaces the pool; anything else is UpdateUserPool,
  and new custom attributes in Schema are AddCustomAttributes.
- ``AWS::Cognito::UserPoolClient``: Ref the client id; GetAtt ClientId, Name, ClientSecret (with GenerateSecret).
  A change to UserPoolId or GenerateSecret replaces it; anything else is UpdateUserPoolClient.
- ``AWS::Cognito::UserPoolGroup``: Ref the group name. A change to UserPoolId or GroupName replaces it; anything else
  is UpdateGroup.

A property goes to the API under the name CloudFormation gives it (UserPoolName is the API's PoolName); one the API
does not take (EnabledMfas, WebAuthn*, ...) is left out. A name left out is made up from the stack and logical id, and
kept by later updates.

A client and a group are replaced by their provider, not by the engine (``Replaced``): the engine counts a Ref as
changed whenever the resource it names is updated, even in place, so it would replace every client and group of a
pool whose password policy changed (a new client id; a group made anew under its own name fails as a duplicate).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import localstack.services.cloudformation.provider_utils as util
from localstack.services.cloudformation.resource_provider import (
    OperationStatus,
    ProgressEvent,
    ResourceProvider,
    ResourceRequest,
)

Properties = dict[str, Any]


def arguments(cognito, operation: str, properties: Properties, **given: Any) -> dict[str, Any]:
    """The properties (and ``given``) the operation takes, typed as it wants them (a template parameter is a string
    where the API may want a number)."""
    shape = cognito.meta.service_model.operation_model(operation).input_shape
    return util.convert_request_kwargs({**properties, **given}, shape)


def done(model: Properties) -> ProgressEvent[Properties]:
    return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)


def default_name(request: ResourceRequest) -> str:
    return util.generate_default_name(request.stack_name, request.logical_resource_id)


def schema(type_name: str, primary: Sequence[str], read_only: Sequence[str], create_only: Sequence[str] = ()) -> dict:
    """The parts of a resource type's schema the engine reads."""
    return {
        "typeName": type_name,
        "primaryIdentifier": [f"/properties/{p}" for p in primary],
        "readOnlyProperties": [f"/properties/{p}" for p in read_only],
        "createOnlyProperties": [f"/properties/{p}" for p in create_only],
    }


class Named(ResourceProvider[Properties]):
    """A resource whose name, left out of the template, is made up at creation and kept by updates."""

    NAME: str

    def create(self, request: ResourceRequest[Properties]) -> ProgressEvent[Properties]:
        request.desired_state.setdefault(self.NAME, default_name(request))
        return self.make(request, request.aws_client_factory.cognito_idp)

    def update(self, request: ResourceRequest[Properties]) -> ProgressEvent[Properties]:
        request.desired_state.setdefault(self.NAME, request.previous_state.get(self.NAME))
        return self.change(request, request.aws_client_factory.cognito_idp)

    def make(self, request: ResourceRequest[Properties], cognito) -> ProgressEvent[Properties]:
        raise NotImplementedError

    def change(self, request: ResourceRequest[Properties], cognito) -> ProgressEvent[Properties]:
        raise NotImplementedError


class Replaced(Named):
    """A resource that its provider replaces when what identifies it changes (module docstring): a new one is made,
    then the old one deleted, as CloudFormation does."""

    def identity(self, model: Properties) -> tuple:
        raise NotImplementedError

    def change(self, request: ResourceRequest[Properties], cognito) -> ProgressEvent[Properties]:
        if self.identity(request.desired_state) == self.identity(request.previous_state):
            return self.change_in_place(request, cognito)
        made = self.make(request, cognito)
        try:
            self.delete(dataclasses.replace(request, desired_state=request.previous_state))
        except cognito.exceptions.ResourceNotFoundException:
            pass
        return made

    def change_in_place(self, request: ResourceRequest[Properties], cognito) -> ProgressEvent[Properties]:
        raise NotImplementedError


class UserPoolProvider(Named):
    TYPE = "AWS::Cognito::UserPool"
    SCHEMA = schema(
        TYPE,
        primary=["UserPoolId"],
        read_only=["UserPoolId", "Arn", "ProviderName", "ProviderURL"],
        create_only=["AliasAttributes", "UsernameAttributes", "UsernameConfiguration"],
    )
    NAME = "UserPoolName"
    ATTRIBUTES = ("UserPoolId", "Arn", "ProviderName", "ProviderURL")

    def make(self, request: ResourceRequest[Properties], cognito) -> ProgressEvent[Properties]:
        model = request.desired_state
        pool = cognito.create_user_pool(**arguments(cognito, "CreateUserPool", model, PoolName=model[self.NAME]))
        pool_id = pool["UserPool"]["Id"]
        region = pool_id.split("_", 1)[0]
        return done(
            {
                **model,
                "UserPoolId": pool_id,
                "Arn": pool["UserPool"]["Arn"],
                "ProviderName": f"cognito-idp.{region}.amazonaws.com/{pool_id}",
                "ProviderURL": f"https://cognito-idp.{region}.amazonaws.com/{pool_id}",
            }
        )

    def change(self, request: ResourceRequest[Properties], cognito) -> ProgressEvent[Properties]:
        model, previous = request.desired_state, request.previous_state
        pool_id = previous["UserPoolId"]
        cognito.update_user_pool(
            **arguments(cognito, "UpdateUserPool", model, UserPoolId=pool_id, PoolName=model[self.NAME])
        )
        known = {attribute["Name"] for attribute in previous.get("Schema") or []}
        if added := [attribute for attribute in model.get("Schema") or [] if attribute["Name"] not in known]:
            cognito.add_custom_attributes(
                **arguments(cognito, "AddCustomAttributes", {}, UserPoolId=pool_id, CustomAttributes=added)
            )
        return done({**model, **{name: previous[name] for name in self.ATTRIBUTES}})

    def delete(self, request: ResourceRequest[Properties]) -> ProgressEvent[Properties]:
        request.aws_client_factory.cognito_idp.delete_user_pool(UserPoolId=request.desired_state["UserPoolId"])
        return done({})


class UserPoolClientProvider(Replaced):
    TYPE = "AWS::Cognito::UserPoolClient"
    SCHEMA = schema(TYPE, primary=["UserPoolId", "ClientId"], read_only=["ClientId", "ClientSecret", "Name"])
    NAME = "ClientName"

    def identity(self, model: Properties) -> tuple:
        return model.get("UserPoolId"), str(model.get("GenerateSecret", False)).lower() == "true"

    def make(self, request: ResourceRequest[Properties], cognito) -> ProgressEvent[Properties]:
        client = cognito.create_user_pool_client(**arguments(cognito, "CreateUserPoolClient", request.desired_state))
        return done(self.attributes(request.desired_state, client["UserPoolClient"]))

    def change_in_place(self, request: ResourceRequest[Properties], cognito) -> ProgressEvent[Properties]:
        model = request.desired_state
        client = cognito.update_user_pool_client(
            **arguments(cognito, "UpdateUserPoolClient", model, ClientId=request.previous_state["ClientId"])
        )
        return done(self.attributes(model, client["UserPoolClient"]))

    def delete(self, request: ResourceRequest[Properties]) -> ProgressEvent[Properties]:
        model = request.desired_state
        cognito = request.aws_client_factory.cognito_idp
        cognito.delete_user_pool_client(UserPoolId=model["UserPoolId"], ClientId=model["ClientId"])
        return done({})

    @staticmethod
    def attributes(model: Properties, client: dict[str, Any]) -> Properties:
        model = {**model, "ClientId": client["ClientId"], "Name": client["ClientName"]}
        if client.get("ClientSecret"):
            model["ClientSecret"] = client["ClientSecret"]
        return model


class UserPoolGroupProvider(Replaced):
    TYPE = "AWS::Cognito::UserPoolGroup"
    # Ref of a group is its name on AWS, so the name alone is the engine's primary identifier.
    SCHEMA = schema(TYPE, primary=["GroupName"], read_only=[])
    NAME = "GroupName"

    def identity(self, model: Properties) -> tuple:
        return model.get("UserPoolId"), model.get("GroupName")

    def make(self, request: ResourceRequest[Properties], cognito) -> ProgressEvent[Properties]:
        cognito.create_group(**arguments(cognito, "CreateGroup", request.desired_state))
        return done(request.desired_state)

    def change_in_place(self, request: ResourceRequest[Properties], cognito) -> ProgressEvent[Properties]:
        cognito.update_group(**arguments(cognito, "UpdateGroup", request.desired_state))
        return done(request.desired_state)

    def delete(self, request: ResourceRequest[Properties]) -> ProgressEvent[Properties]:
        model = request.desired_state
        request.aws_client_factory.cognito_idp.delete_group(
            UserPoolId=model["UserPoolId"], GroupName=model["GroupName"]
        )
        return done({})
