"""WebSettings: the web page's knobs, from PODIUM_WEB_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from podium.client.settings import GatewayAddress
from podium.core.settings import DEFAULT_GATEWAY, DEFAULT_RESULT_TTL_S, DEFAULT_WEB_PORT


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PODIUM_WEB_", extra="ignore")

    gateway: str = Field(DEFAULT_GATEWAY, description="The gateway's host:port (the page's only backend)")
    gateway_tls: bool = Field(False, description="Speak TLS to the gateway")
    gateway_tls_ca_file: str = Field("", description="PEM CA certificate(s) to trust for the gateway; implies TLS")
    host: str = Field("127.0.0.1", description="Address to listen on ('0.0.0.0' in containers)")
    port: int = Field(DEFAULT_WEB_PORT, ge=0, le=65535, description="HTTP port")
    allow_unauthenticated: bool = Field(
        False,
        description="Serve a gateway without API keys on a non-loopback address (refused unless true)",
    )
    cookie_secure: bool = Field(False, description="Send the session cookie over HTTPS only (behind a TLS proxy)")
    session_ttl_s: int = Field(8 * 3600, ge=60, description="A login lasts this long")
    cache_dir: Path = Field(Path(".podium/web"), description="Thumbnails of uploaded images")
    thumbnail_px: int = Field(160, ge=32, le=1024, description="Thumbnail side in pixels")
    thumbnail_ttl_s: int = Field(
        DEFAULT_RESULT_TTL_S,
        ge=60,
        description="Thumbnails are removed this long after their upload (as the gateway's PODIUM_RESULT_TTL_S "
        "removes the job; a job deleted elsewhere loses its thumbnails then too)",
    )
    reports_dir: Path | None = Field(None, description="Folder of `podium evaluate` reports shown on /evaluations")
    page_size: int = Field(60, ge=1, le=1000, description="Result rows per page")
    gateway_wait_s: float = Field(60.0, ge=0, description="How long start-up waits for the gateway to answer")
    allowed_hosts: str = Field(
        "",
        description="Comma-separated host names the page answers to, beside localhost and IP addresses (else 400)",
    )

    def address(self) -> GatewayAddress:
        """The page's gateway, as the client library reaches it."""
        return GatewayAddress(self.gateway, self.gateway_tls, self.gateway_tls_ca_file)
