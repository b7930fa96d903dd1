"""WHEP over HTTP (aiohttp): POST an SDP offer, get 201 with the answer; DELETE to leave.

Routes: ``/whep/{stream_id}`` (starts on rendition ``source``, then adapts to the viewer's
loss and RTT) and ``/whep/{stream_id}/{rendition}`` (that rendition only) take offers;
``/whep/resource/{viewer_id}`` is a viewer's resource (DELETE, PATCH with trickled ICE
candidates as ``application/trickle-ice-sdpfrag``, GET ``/stats``).
Browsers get CORS headers and an OPTIONS answer; ICE servers go in ``Link`` headers
(RFC 9725). With a token configured, offers need ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import asdict
from typing import Any

from aiohttp import web

from casino_kit.errors import DomainError
from casino_kit.logs import get_logger
from edge_relay.relay import Relay

log = get_logger(__name__)

DEFAULT_RENDITION = "source"
RELAY_KEY: web.AppKey[Relay] = web.AppKey("relay", Relay)
OPTIONS_KEY: web.AppKey[WhepOptions] = web.AppKey("options", object)  # type: ignore[arg-type]


class WhepOptions:
    """What the HTTP side needs beyond the relay: token, CORS origin, ICE servers to announce."""

    def __init__(
        self,
        token: str = "",
        cors_origin: str = "*",
        ice_servers: tuple[str, ...] = (),
        ice_username: str = "",
        ice_credential: str = "",
        codec_counts: Any = None,
    ) -> None:
        self.token = token
        self.cors_origin = cors_origin
        self.ice_servers = ice_servers
        self.ice_username = ice_username
        self.ice_credential = ice_credential
        self.codec_counts = codec_counts


def _cors(request: web.Request) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": request.app[OPTIONS_KEY].cors_origin,
        "Access-Control-Allow-Methods": "OPTIONS, POST, PATCH, DELETE, GET",
        "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
        "Access-Control-Expose-Headers": "Location, Link, ETag",
    }


def _links(options: WhepOptions) -> list[str]:
    links = []
    for url in options.ice_servers:
        link = f'<{url}>; rel="ice-server"'
        if url.startswith("turn") and options.ice_username:
            link += (
                f'; username="{options.ice_username}"; credential="{options.ice_credential}"'
                '; credential-type="password"'
            )
        links.append(link)
    return links


def _error(request: web.Request, status: int, reason: str, message: str) -> web.Response:
    body = json.dumps({"reason": reason, "message": message})
    return web.Response(
        status=status, text=body, content_type="application/json", headers=_cors(request)
    )


async def options(request: web.Request) -> web.Response:
    response = web.Response(
        status=204, headers={**_cors(request), "Accept-Post": "application/sdp"}
    )
    for link in _links(request.app[OPTIONS_KEY]):
        response.headers.add("Link", link)
    return response


def _authorised(request: web.Request) -> bool:
    token = request.app[OPTIONS_KEY].token
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


async def offer(request: web.Request) -> web.Response:
    if not _authorised(request):
        return _error(request, 401, "UNAUTHENTICATED", "a bearer token is required")
    if request.content_type != "application/sdp":
        return _error(request, 415, "UNSUPPORTED_MEDIA_TYPE", "the offer must be application/sdp")
    stream_id = request.match_info["stream_id"]
    named = request.match_info.get("rendition")
    rendition = named or DEFAULT_RENDITION
    relay = request.app[RELAY_KEY]
    try:
        viewer_id, answer = await relay.add_viewer(
            stream_id, rendition, await request.text(), adaptive=named is None
        )
    except DomainError as error:
        status = 404 if error.reason == "STREAM_NOT_FOUND" else 503
        return _error(request, status, error.reason, error.message)
    except ValueError as error:
        return _error(request, 400, "INVALID_OFFER", str(error))
    location = f"/whep/resource/{viewer_id}"
    response = web.Response(
        status=201,
        text=answer,
        content_type="application/sdp",
        headers={**_cors(request), "Location": location, "ETag": f'"{viewer_id}"'},
    )
    for link in _links(request.app[OPTIONS_KEY]):
        response.headers.add("Link", link)
    log.info("viewer joined", viewer_id=viewer_id, stream_id=stream_id, rendition=rendition)
    return response


async def leave(request: web.Request) -> web.Response:
    if not _authorised(request):
        return _error(request, 401, "UNAUTHENTICATED", "a bearer token is required")
    try:
        await request.app[RELAY_KEY].remove_viewer(request.match_info["viewer_id"])
    except DomainError as error:
        return _error(request, 404, error.reason, error.message)
    return web.Response(status=200, headers=_cors(request))


async def patch(request: web.Request) -> web.Response:
    """Trickle ICE (RFC 9725 section 4.3): the viewer's candidates after its offer.

    The relay's own candidates are all in its answer (aiortc gathers before answering), so
    the response has no body. An ICE restart (a new ufrag) is not supported.
    """
    if not _authorised(request):
        return _error(request, 401, "UNAUTHENTICATED", "a bearer token is required")
    if request.content_type != "application/trickle-ice-sdpfrag":
        return _error(request, 415, "UNSUPPORTED_MEDIA_TYPE", "use application/trickle-ice-sdpfrag")
    try:
        await request.app[RELAY_KEY].trickle(request.match_info["viewer_id"], await request.text())
    except DomainError as error:
        return _error(request, 404, error.reason, error.message)
    except ValueError as error:
        return _error(request, 422, "INVALID_SDP_FRAGMENT", str(error))
    return web.Response(status=204, headers=_cors(request))


async def viewer_stats(request: web.Request) -> web.Response:
    try:
        figures = await request.app[RELAY_KEY].figures(request.match_info["viewer_id"])
    except DomainError as error:
        return _error(request, 404, error.reason, error.message)
    return web.json_response(asdict(figures), headers=_cors(request))


async def relay_stats(request: web.Request) -> web.Response:
    relay = request.app[RELAY_KEY]
    p50, p99 = relay.delay_percentiles_us()
    counts = request.app[OPTIONS_KEY].codec_counts
    body = {
        "relay_id": relay.relay_id,
        "viewers": len(relay.viewers),
        "relay_delay_p50_us": p50,
        "relay_delay_p99_us": p99,
        "codec_probe": counts.as_dict() if counts is not None else None,
    }
    return web.json_response(body, headers=_cors(request))


def whep_app(relay: Relay, whep_options: WhepOptions) -> web.Application:
    app = web.Application()
    app[RELAY_KEY] = relay
    app[OPTIONS_KEY] = whep_options
    app.router.add_get("/stats", relay_stats)
    app.router.add_route("OPTIONS", "/whep/{stream_id}", options)
    app.router.add_route("OPTIONS", "/whep/{stream_id}/{rendition}", options)
    app.router.add_route("OPTIONS", "/whep/resource/{viewer_id}", options)
    app.router.add_post("/whep/{stream_id}", offer)
    app.router.add_post("/whep/{stream_id}/{rendition}", offer)
    app.router.add_delete("/whep/resource/{viewer_id}", leave)
    app.router.add_patch("/whep/resource/{viewer_id}", patch)
    app.router.add_get("/whep/resource/{viewer_id}/stats", viewer_stats)
    return app


class WhepServer:
    """The HTTP listener beside the gRPC server: started and stopped with the service."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.runner = web.AppRunner(app, access_log=None)
        self.host = host
        self.port = port
        self.started = False

    async def start(self) -> None:
        if self.started:
            return
        await self.runner.setup()
        await web.TCPSite(self.runner, self.host, self.port).start()
        self.port = int(self.runner.addresses[0][1])  # the bound port, when 0 took a free one
        self.started = True
        log.info("whep listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        if self.started:
            self.started = False
            await self.runner.cleanup()
