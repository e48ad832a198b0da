"""The HTTP API and the page (Starlette). Every page action is one of these calls; the page holds no logic. The
routes are listed in `build_app` and described, with what each takes and returns, in docs/serve.md. A handler that
reads many files or waits is a plain function: Starlette runs those in a thread pool, off the event loop."""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import ladtalk.serve.catalog as catalog
from ladtalk import __version__
from ladtalk.errors import InputError, LadtalkError
from ladtalk.serve.jobs import LIVE, Job, remove_path, tree_bytes
from ladtalk.serve.paths import FOLDERS, NotFound, public_message
from ladtalk.serve.submit import Server, presets
from ladtalk.serve.uploads import TooLarge, receive

STATIC = Path(__file__).with_name("static")
TOKEN_COOKIE = "ladtalk_token"


def _server(request: Request) -> Server:
    return request.app.state.server


async def info(request: Request) -> Response:
    s = _server(request)
    return JSONResponse({"version": __version__, "devices": [w.name.split("-", 2)[2] for w in s.jobs.workers],
                         "max_upload_mb": s.max_upload_bytes / 2**20, "presets": presets()})


async def _discard(chunks: AsyncIterator[bytes], limit: int = 16 * 2**20) -> None:
    """Read and drop up to `limit` more bytes of a refused body: a client still sending when the server answers
    and closes gets a broken pipe instead of the 413 (seen under load); past the limit the connection is dropped."""
    with contextlib.suppress(ClientDisconnect):
        async for chunk in chunks:
            limit -= len(chunk)
            if limit < 0:
                return


async def upload(request: Request) -> Response:
    s = _server(request)
    declared = request.headers.get("content-length")
    chunks = request.stream()
    try:
        if declared and declared.isdigit() and int(declared) > s.max_upload_bytes:
            raise TooLarge(s.max_upload_bytes)
        record = await receive(s.data, request.query_params.get("kind", ""), chunks, s.max_upload_bytes,
                               request.query_params.get("name", ""))
    except TooLarge:
        await _discard(chunks)
        raise
    return JSONResponse(record, status_code=201)


async def upload_file(request: Request) -> Response:
    return FileResponse(_server(request).data.upload(request.path_params["id"]))


async def upload_delete(request: Request) -> Response:
    s = _server(request)
    path = s.data.upload(request.path_params["id"])
    if s.in_use(path.stem):
        raise InputError(f"upload {path.stem!r} is an input of a queued or running job; wait for it or cancel it")
    if sources := [i["name"] for i in catalog.list_identities(s.data.folder("identities")) if i["source"] == path.name]:
        raise InputError(f"upload {path.stem!r} is the video identity {sources[0]!r} was prepared from (generate "
                         "reads its frames); delete the identity first")
    remove_path(path.with_name(f".{path.stem}.json"))
    remove_path(path)
    return JSONResponse({"deleted": path.stem})


LISTS = {  # what the page lists: GET /api/NAME each, GET /api/overview all of them in one call (the page polls it)
    "jobs": lambda s: [j.public() for j in s.jobs.list()],
    "identities": lambda s: catalog.list_identities(s.data.folder("identities")),
    "models": lambda s: catalog.list_models(s.data.folder("models"), s.jobs.busy_targets()),
    "uploads": lambda s: s.data.uploads(),
    "builtin": lambda s: catalog.list_builtin(),
}


def overview(request: Request) -> Response:
    return JSONResponse({name: listed(_server(request)) for name, listed in LISTS.items()})


def _list(name: str):
    def handler(request: Request) -> Response:  # a plain function: run off the event loop, like overview
        return JSONResponse(LISTS[name](_server(request)))
    return handler


def disk(request: Request) -> Response:
    """Bytes used per folder and per item, and the free space."""
    s = _server(request)
    items = {sub: {p.stem if sub == "uploads" else p.name: tree_bytes(p) for p in s.data.folder(sub).iterdir()
                   if not p.name.startswith(".") and not p.is_symlink()} for sub in FOLDERS}  # an upload by its id
    free = shutil.disk_usage(s.data.root).free
    return JSONResponse({"folders": {k: sum(v.values()) for k, v in items.items()}, "items": items, "free": free})


async def identity(request: Request) -> Response:
    s = _server(request)
    path = s.identity(request.path_params["name"])
    if request.method == "DELETE":
        if path.name in s.jobs.busy_targets() or s.in_use(path.name):
            raise InputError(f"identity {path.name!r} is being prepared or used by a job; wait for it or cancel it")
        shutil.rmtree(path)
        return JSONResponse({"deleted": path.name})
    return JSONResponse(catalog.identity_summary(path))


async def identity_crops(request: Request) -> Response:
    path = _server(request).identity(request.path_params["name"])
    return Response(catalog.crops_strip_png(path), media_type="image/png")


async def model(request: Request) -> Response:
    s = _server(request)
    path = s.data.inside("models", request.path_params["name"], what="model")
    if request.method == "DELETE":
        if path.name in s.jobs.busy_targets() or s.in_use(path.name):
            raise InputError(f"model {path.name!r} is training or used by a job; wait for it or cancel it")
        remove_path(path)
        return JSONResponse({"deleted": path.name})
    return JSONResponse({**catalog.model_summary(path, path.name in s.jobs.busy_targets()),
                         "metrics": catalog.read_metrics(path)})


async def model_resume(request: Request) -> Response:
    return JSONResponse(_server(request).resume(request.path_params["name"]).public(), status_code=202)


async def jobs(request: Request) -> Response:
    s = _server(request)
    if request.method == "POST":
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise InputError("send the job as JSON (Content-Type: application/json)")
        try:
            body = json.loads(await request.body())
        except ValueError as e:
            raise InputError(f"the job is not valid JSON ({e})") from e
        if not isinstance(body, dict):
            raise InputError("the job must be a JSON object with a 'kind'")
        return JSONResponse(s.submit(body).public(), status_code=202)
    return JSONResponse(LISTS["jobs"](s))


def _job(request: Request) -> Job:
    return _server(request).job(request.path_params["id"])


async def job(request: Request) -> Response:
    job = _job(request)
    if request.method == "DELETE":
        s = _server(request)
        if job.state in LIVE:
            raise InputError(f"job {job.id} is {job.state}; cancel it first")
        if s.in_use(job.id):
            raise InputError(f"a queued or running job reads a result of job {job.id}; wait for it or cancel it")
        s.jobs.delete(job.id)
        return JSONResponse({"deleted": job.id})
    return JSONResponse(job.public())


async def again(request: Request) -> Response:
    return JSONResponse(_server(request).again(_job(request)).public(), status_code=202)


def cancel(request: Request) -> Response:
    job = _job(request)
    _server(request).jobs.cancel(job)  # may wait for a checkpoint to be saved
    return JSONResponse(job.public())


async def job_log(request: Request) -> Response:
    if not (path := _job(request).dir / "log.txt").is_file():
        raise NotFound("this job has no log (it has not started, or it was cancelled)")
    return FileResponse(path, media_type="text/plain; charset=utf-8")


async def job_file(request: Request) -> Response:
    return FileResponse(_server(request).job_file(request.path_params["id"], request.path_params["path"]))


async def page(request: Request) -> Response:
    response = FileResponse(STATIC / "index.html")
    if token := request.query_params.get("token"):  # then the page's requests (its <video>s too) carry it as a cookie
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
    return response


def _error(status: int):
    async def handler(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": public_message(str(exc), _server(request).data.root)}, status_code=status)
    return handler


class Guard(BaseHTTPMiddleware):
    """The token (when set), and no cross-site writes: a page elsewhere cannot make the browser call this API."""

    async def dispatch(self, request: Request, call_next):
        s: Server = request.app.state.server
        host = urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
        if s.loopback_only and not is_loopback(host):
            return JSONResponse({"error": f"host {host!r} refused: this server answers on localhost only"},
                                status_code=403)
        if s.token:
            given = (request.headers.get("authorization", "").removeprefix("Bearer ").strip()
                     or request.cookies.get(TOKEN_COOKIE) or request.query_params.get("token") or "")
            if not hmac.compare_digest(given.encode(), s.token.encode()):
                return JSONResponse({"error": "this server needs its token: send 'Authorization: Bearer TOKEN' "
                                     "or open the page as /?token=TOKEN"}, status_code=401)
        origin = request.headers.get("origin")
        if request.method not in ("GET", "HEAD") and origin and urlsplit(origin).netloc != request.headers.get("host"):
            return JSONResponse({"error": f"cross-site request from {origin} refused"}, status_code=403)
        return await call_next(request)


def build_app(server: Server) -> Starlette:
    routes = [
        Route("/", page),
        Route("/api/info", info),
        Route("/api/overview", overview),
        Route("/api/disk", disk),
        Route("/api/uploads", upload, methods=["POST"]),
        Route("/api/uploads", _list("uploads")),
        Route("/api/uploads/{id}", upload_delete, methods=["DELETE"]),
        Route("/api/uploads/{id}/file", upload_file),
        Route("/api/identities", _list("identities")),
        Route("/api/identities/{name}", identity, methods=["GET", "DELETE"]),
        Route("/api/identities/{name}/crops.png", identity_crops),
        Route("/api/models", _list("models")),
        Route("/api/models/{name}", model, methods=["GET", "DELETE"]),
        Route("/api/models/{name}/resume", model_resume, methods=["POST"]),
        Route("/api/jobs", jobs, methods=["GET", "POST"]),
        Route("/api/jobs/{id}", job, methods=["GET", "DELETE"]),
        Route("/api/jobs/{id}/cancel", cancel, methods=["POST"]),
        Route("/api/jobs/{id}/again", again, methods=["POST"]),
        Route("/api/jobs/{id}/log", job_log),
        Route("/api/jobs/{id}/files/{path:path}", job_file),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handlers = {NotFound: _error(404), TooLarge: _error(413), LadtalkError: _error(400)}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        server.jobs.shutdown()  # stop running jobs: shown as interrupted by the next server

    app = Starlette(routes=routes, middleware=[Middleware(Guard)], exception_handlers=handlers, lifespan=lifespan)
    app.state.server = server
    return app


def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
