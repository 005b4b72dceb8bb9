"""ClientSettings: where the gateway is and how to authenticate, from PODIUM_* variables;
GatewayAddress: the one block, shared with the web page, that turns an address into a client."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from podium.client.api import PodiumClient
from podium.core.settings import DEFAULT_GATEWAY


@dataclass(frozen=True)
class GatewayAddress:
    """Where a gateway is and how to speak to it (the client's PODIUM_GATEWAY/PODIUM_TLS*, the
    web page's PODIUM_WEB_GATEWAY*): one way from settings to a connected client."""

    gateway: str = DEFAULT_GATEWAY
    tls: bool = False  # TLS with the system's root certificates
    tls_ca_file: str = ""  # PEM CA certificate(s) to trust instead; implies TLS

    def connect(self, api_key: str = "", **options: float) -> PodiumClient:
        """A client of this gateway calling as ``api_key``; ``options``: PodiumClient's timeouts."""
        return PodiumClient(self.gateway, api_key, tls=self.tls, tls_ca_file=self.tls_ca_file, **options)


class ClientSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PODIUM_", extra="ignore")

    gateway: str = Field(DEFAULT_GATEWAY, description="The gateway's host:port")
    api_key: str = Field("", description="API key sent as x-api-key")
    tls: bool = Field(False, description="Speak TLS to the gateway (system root certificates)")
    tls_ca_file: str = Field("", description="PEM CA certificate(s) to trust instead; implies tls")

    def address(self, gateway: str | None = None) -> GatewayAddress:
        """The gateway to call (``gateway`` overrides PODIUM_GATEWAY, e.g. from --gateway)."""
        return GatewayAddress(gateway or self.gateway, self.tls, self.tls_ca_file)
