"""Patches of moto's Cognito backend (``moto.cognitoidp.models``, moto-ext 5.1.25), which the ``cognito-idp:moto``
provider (localcloud.plugins.cognito_idp) serves, where moto answers otherwise than Cognito does, for what a user
pool's clients rely on:

UpdateUserPool renames the pool, sets its MFA configuration (moto kept the old ones) and keeps the settings only
CreateUserPool makes (moto dropped them); DeleteUserPool refuses a pool with deletion protection; InitiateAuth and
AdminInitiateAuth refuse a password flow the app client does not allow (ExplicitAuthFlows); ID and access tokens
expire after the client's IdTokenValidity / AccessTokenValidity in its TokenValidityUnits (moto: always an hour)
and carry their ``iat`` (moto left it out; JWT libraries may require it).
"""

from __future__ import annotations

import time
from typing import Any

from localcloud.patching import Patch, hook, patch_all

# The app client flags (current or legacy) that let each password flow through; a client that names none allows
# Cognito's defaults, which have no password flow. moto's SRP and custom flows are not checked (nor really served).
FLOW_FLAGS = {
    "USER_PASSWORD_AUTH": {"ALLOW_USER_PASSWORD_AUTH", "USER_PASSWORD_AUTH"},
    "ADMIN_USER_PASSWORD_AUTH": {"ALLOW_ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"},
    "ADMIN_NO_SRP_AUTH": {"ALLOW_ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"},
}


DEFAULT_FLOWS = {"ALLOW_USER_SRP_AUTH", "ALLOW_CUSTOM_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}


# What only CreateUserPool sets, which moto's UpdateUserPool dropped (a pool whose users sign in with their email
# address no longer found them).
CREATE_ONLY_POOL_SETTINGS = ("UsernameAttributes", "AliasAttributes", "UsernameConfiguration")


UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


def token_lifetime(client_config: dict[str, Any], token_use: str) -> int | None:
    """Seconds an ID or access token of this client lives, None for Cognito's default (an hour)."""
    kind = {"id": "IdToken", "access": "AccessToken"}.get(token_use)
    validity = kind and client_config.get(f"{kind}Validity")
    if not validity:
        return None
    unit = (client_config.get("TokenValidityUnits") or {}).get(kind) or "hours"
    return int(validity) * UNIT_SECONDS[unit]


def check_flow(client, auth_flow: str, message: str) -> None:
    """Cognito's refusal of an auth flow the app client does not allow."""
    from moto.cognitoidp.exceptions import InvalidParameterException

    needed = FLOW_FLAGS.get(auth_flow)
    if client is not None and needed:
        allowed = set(client.extended_config.get("ExplicitAuthFlows") or DEFAULT_FLOWS)
        if not allowed & needed:
            raise InvalidParameterException(message)


@hook("moto's Cognito answers as Cognito's")
def fix_moto_cognito_idp() -> str | None:
    """The changes to moto's Cognito backend listed in the module docstring. (moto.cognitoidp is imported at start-up
    for it: ~15 ms of CPU, as it was at the provider's first use.)"""
    from moto.cognitoidp.exceptions import InvalidParameterException
    from moto.cognitoidp.models import CognitoIdpBackend, CognitoIdpUserPool

    def updating_name_and_mfa(original):
        def update_user_pool(self, user_pool_id: str, extended_config: dict[str, Any]) -> None:
            pool = self.describe_user_pool(user_pool_id)
            kept = {k: pool.extended_config[k] for k in CREATE_ONLY_POOL_SETTINGS if k in pool.extended_config}
            config = {k: v for k, v in extended_config.items() if k not in ("UserPoolId", "PoolName")}
            original(self, user_pool_id, {**config, **kept})
            pool.name = extended_config.get("PoolName") or pool.name
            pool.mfa_config = config.get("MfaConfiguration") or "OFF"

        return update_user_pool

    def protecting(original):
        def delete_user_pool(self, user_pool_id: str) -> None:
            if self.describe_user_pool(user_pool_id).extended_config.get("DeletionProtection") == "ACTIVE":
                raise InvalidParameterException(
                    "The user pool cannot be deleted because deletion protection is activated. "
                    "Deletion protection must be inactivated first."
                )
            original(self, user_pool_id)

        return delete_user_pool

    def checking_flow(original):
        def initiate_auth(self, client_id: str, auth_flow: str, auth_parameters: dict[str, str]):
            client = next((p.clients[client_id] for p in self.user_pools.values() if client_id in p.clients), None)
            check_flow(client, auth_flow, f"{auth_flow} flow not enabled for this client")
            return original(self, client_id, auth_flow, auth_parameters)

        return initiate_auth

    def checking_admin_flow(original):
        def admin_initiate_auth(self, user_pool_id: str, client_id: str, auth_flow: str, auth_parameters):
            pool = self.user_pools.get(user_pool_id)
            check_flow(pool and pool.clients.get(client_id), auth_flow, "Auth flow not enabled for this client")
            return original(self, user_pool_id, client_id, auth_flow, auth_parameters)

        return admin_initiate_auth

    def client_lifetimes(original):
        def create_jwt(self, client_id, username, token_use, expires_in=3600, extra_data=None):
            client = self.clients.get(client_id)
            expires_in = (client and token_lifetime(client.extended_config, token_use)) or expires_in
            now = int(time.time())  # one clock for the times moto sets and the one it left out
            claims = {"auth_time": now, "iat": now, "exp": now + expires_in, **(extra_data or {})}
            return original(self, client_id, username, token_use, expires_in, claims)

        return create_jwt

    if not patch_all(
        Patch(CognitoIdpBackend, "update_user_pool", updating_name_and_mfa, wraps=True),
        Patch(CognitoIdpBackend, "delete_user_pool", protecting, wraps=True),
        Patch(CognitoIdpBackend, "initiate_auth", checking_flow, wraps=True),
        Patch(CognitoIdpBackend, "admin_initiate_auth", checking_admin_flow, wraps=True),
        Patch(CognitoIdpUserPool, "create_jwt", client_lifetimes, wraps=True),
    ):
        return None
    return "moto's cognito-idp keeps pool settings, refuses disallowed flows, gives tokens their client's lifetimes"
