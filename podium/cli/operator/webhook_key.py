"""``podium webhook-key``: the key one tenant's receivers check webhook signatures with."""

from __future__ import annotations

from typing import Annotated

import typer

from podium.cli.failures import reported
from podium.cli.options import out
from podium.core.errors import FailedPrecondition


def register(app: typer.Typer) -> None:
    app.command("webhook-key")(reported(webhook_key))


def webhook_key(
    api_key: Annotated[
        str, typer.Option(help="The tenant's API key (empty: a gateway without keys)", envvar="PODIUM_API_KEY")
    ] = "",
) -> None:
    """Print the signing key of the tenant with API_KEY, derived from $PODIUM_WEBHOOK_SECRET (run where
    the gateway's secret is set; give the key to the tenant for its receiver, never the secret)."""
    from gateway.access import owner_digest
    from gateway.settings import GatewaySettings
    from gateway.webhooks import owner_signing_key
    from podium.core.settings import read_settings

    secret = read_settings(GatewaySettings).webhook_secret
    if not secret:
        raise FailedPrecondition(
            "PODIUM_WEBHOOK_SECRET is not set here: webhooks are unsigned",
            hint="run this where the gateway's PODIUM_WEBHOOK_SECRET is set",
        )
    out.print(owner_signing_key(secret, owner_digest(api_key) if api_key else ""), highlight=False)
