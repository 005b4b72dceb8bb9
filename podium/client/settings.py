"""ClientSettings: where the gateway is and how to authenticate, from PODIUM_* variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from podium.core.settings import DEFAULT_GATEWAY


class ClientSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PODIUM_", extra="ignore")

    gateway: str = Field(DEFAULT_GATEWAY, description="The gateway's host:port")
    api_key: str = Field("", description="API key sent as x-api-key")
    tls: bool = Field(False, description="Speak TLS to the gateway (system root certificates)")
    tls_ca_file: str = Field("", description="PEM CA certificate(s) to trust instead; implies tls")
