"""The HTTP API and the page (Starlette). Every page action is one of these calls; the page holds no logic.

POST /api/uploads?kind=video|audio|weights   body: the file's bytes          -> {id, kind, bytes, seconds, ...}
POST /api/jobs   JSON {kind: prepare|train|generate|enhance|analyze|evaluate, ...}  -> 202 {id, state, ...}
GET  /api/jobs, /api/jobs/{id}                                              -> state, progress, error, result
POST /api/jobs/{id}/cancel;  GET /api/jobs/{id}/files/{path}, .../log      -> stop it; a result file; its log
GET  /api/identities[/{name}[/crops.png]], /api/models[/{name}]; DELETE /api/identities|models/{name}
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import os
import re
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

from ladtalk import __version__
from ladtalk.errors import InputError, LadtalkError
from ladtalk.face import DEFAULT_PADS
from ladtalk.serve import catalog
from ladtalk.serve.jobs import OUT, Job, JobManager, OutPath, remove_path
from ladtalk.serve.paths import DataDir, NotFound, check_name
from ladtalk.serve.uploads import TooLarge, receive

STATIC = Path(__file__).with_name("static")
SOVQAE_PRESETS = ("tiny", "demo", "paper-256", "paper-512")
OVERRIDE_RE = re.compile(r"train\.[a-z_]+=[A-Za-z0-9_.+-]{1,32}")
TOKEN_COOKIE = "ladtalk_token"


class Server:
    """The state behind the routes: the data folder, the job queue and the settings."""

    def __init__(self, data: DataDir, jobs: JobManager, max_upload_bytes: int, token: str | None,
                 loopback_only: bool = True):
        self.data, self.jobs, self.max_upload_bytes, self.token = data, jobs, max_upload_bytes, token
        self.loopback_only = loopback_only  # then only loopback Host headers: no DNS-rebinding way in

    # ---- names from requests -> checked paths

    def identity(self, name: object) -> Path:
        path = self.data.inside("identities", check_name(name, "identity"), what="identity")
        if not (path / "identity.json").is_file():
            raise NotFound(f"no identity {name!r}; prepare one first")
        return path

    def model(self, name: object, what: str = "model") -> Path:
        """A folder under models/, or else an uploaded weight file (an upload id)."""
        check_name(name, what)
        try:
            return self.data.inside("models", name, what=what)
        except NotFound:
            try:
                return self.data.upload(name)
            except NotFound:
                raise NotFound(f"no {what} {name!r}: give a name from GET /api/models or the id of an uploaded "
                               "weight file") from None

    def new_name(self, sub: str, name: object, what: str) -> str:
        check_name(name, what)
        if (self.data.folder(sub) / name).exists() or name in self.jobs.busy_targets():
            raise InputError(f"{what} {name!r} already exists or is being made; choose another name or delete it")
        return name

    # ---- job submission: the same parameters as the CLI's

    def submit(self, body: dict) -> Job:
        kind = body.get("kind")
        make = {"prepare": self._prepare, "train": self._train, "generate": self._generate,
                "enhance": self._enhance, "analyze": self._analyze, "evaluate": self._evaluate}.get(kind)
        if make is None:
            raise InputError(f"job kind must be one of prepare, train, generate, enhance, analyze, evaluate; "
                             f"got {kind!r}")
        job = make(body)
        job.request = {k: v for k, v in body.items() if isinstance(v, (str, int, float, bool)) or v is None}
        return job

    def _pads(self, body: dict) -> list[int]:
        pads = body.get("pads", list(DEFAULT_PADS))
        if not (isinstance(pads, list) and len(pads) == 4 and all(isinstance(p, int) for p in pads)):
            raise InputError("pads are four integers: top bottom left right, e.g. [0, 10, 0, 0]")
        return pads

    def _prepare(self, body: dict) -> Job:
        name = self.new_name("identities", body.get("name"), "identity")
        size = body.get("size", 256)
        if size not in (256, 512):
            raise InputError(f"size must be 256 or 512, got {size!r}")
        target = self.data.folder("identities") / name
        call = {"out_dir": None, "size": size, "pads": self._pads(body)}
        owned = []
        if body.get("synthetic"):
            seconds = body.get("seconds", 8.0)
            if not isinstance(seconds, (int, float)) or not 2 <= seconds <= 60:
                raise InputError(f"seconds of the synthetic identity must be within 2 to 60, got {seconds!r}")
            synthetic_path = self.data.folder("uploads") / f"{os.urandom(8).hex()}.mp4"
            call.update(video_path=None, synthetic_seconds=float(seconds), synthetic_path=str(synthetic_path))
            owned.append(synthetic_path)
            title = f"prepare the built-in synthetic identity as '{name}'"
        else:
            call["video_path"] = str(self.data.upload(body.get("upload")))
            title = f"prepare '{name}' from {self.data.upload_name(Path(call['video_path']))}"
        call["out_dir"] = OutPath("identity")

        def finalize(job: Job) -> None:  # the finished folder appears under its name in one rename
            os.replace(job.call["out_dir"], target)
            job.result = {"identity": name}

        return self.jobs.submit("prepare", title, call, owned=owned, target=name, finalize=finalize)

    def _train(self, body: dict) -> Job:
        ident = self.identity(body.get("identity"))
        name = check_name(body.get("name"), "model")
        if name in self.jobs.busy_targets():
            raise InputError(f"model {name!r} is training already; stop it first")
        run_dir = self.data.folder("models") / name
        resume = run_dir.exists()
        if resume and not (run_dir / "checkpoints").is_dir():
            raise InputError(f"model {name!r} exists and is not a SOVQAE training run; choose another name")
        preset = body.get("preset", "tiny")
        if preset not in SOVQAE_PRESETS:
            raise InputError(f"preset must be one of {', '.join(SOVQAE_PRESETS)}, got {preset!r}")
        overrides = body.get("overrides", [])
        if not isinstance(overrides, list) or not all(isinstance(o, str) and OVERRIDE_RE.fullmatch(o)
                                                      for o in overrides):
            raise InputError("overrides are a list of 'train.KEY=VALUE' strings, e.g. ['train.max_steps=200']")

        def cleanup(job: Job) -> None:  # stopped: keep a resumable run, drop one that never saved a checkpoint
            for tmp in run_dir.rglob("*.partial*"):
                remove_path(tmp)
            if not resume and not (run_dir / "checkpoints" / "last").is_dir():
                remove_path(run_dir)

        call = {"identity_dir": str(ident), "run_dir": str(run_dir), "preset": preset, "overrides": overrides}
        return self.jobs.submit("train", f"{'resume' if resume else 'train'} SOVQAE '{name}' on '{ident.name}' "
                                f"({preset})", call, target=name, cleanup=cleanup, interrupt_first=True)

    def _generate(self, body: dict) -> Job:
        ident = self.identity(body.get("identity"))
        audio = self.data.upload(body.get("audio"))
        wav2lip = self.model(body.get("wav2lip"), "lip-sync model")
        sovqae = self.model(body["sovqae"], "SOVQAE") if body.get("sovqae") else None
        paste = body.get("paste", "feather")
        if paste not in ("feather", "hard"):
            raise InputError(f"paste must be 'feather' or 'hard', got {paste!r}")
        call = {"identity_dir": str(ident), "audio_path": str(audio), "out_dir": OUT, "wav2lip_path": str(wav2lip),
                "sovqae_path": str(sovqae) if sovqae else None, "paste": paste}
        return self.jobs.submit("generate", f"generate '{ident.name}' speaking {self.data.upload_name(audio)}", call)

    def _enhance(self, body: dict) -> Job:
        video = self.data.upload(body.get("video"))
        sovqae = self.model(body.get("sovqae"), "SOVQAE")
        call = {"video_path": str(video), "out_dir": OUT, "sovqae_path": str(sovqae), "pads": self._pads(body)}
        return self.jobs.submit("enhance", f"enhance {self.data.upload_name(video)} with '{sovqae.name}'", call)

    def _analyze(self, body: dict) -> Job:
        sovqae = self.model(body.get("model"), "SOVQAE")
        ident = self.identity(body.get("identity"))
        max_frames = body.get("max_frames", 64)
        if not isinstance(max_frames, int) or max_frames < 1:
            raise InputError(f"max_frames must be a positive integer, got {max_frames!r}")
        call = {"model_path": str(sovqae), "identity_dir": str(ident), "out_dir": OUT, "max_frames": max_frames}
        return self.jobs.submit("analyze", f"analyze '{sovqae.name}' on '{ident.name}'", call)

    def _evaluate(self, body: dict) -> Job:
        pred, gt = self.data.upload(body.get("pred")), self.data.upload(body.get("gt"))
        align = body.get("align", "sliding")
        if align not in ("sliding", "frames"):
            raise InputError(f"align must be 'sliding' or 'frames', got {align!r}")
        call = {"pred_path": str(pred), "gt_path": str(gt), "out_dir": OUT, "align": align}
        title = f"evaluate {self.data.upload_name(pred)} against {self.data.upload_name(gt)}"
        return self.jobs.submit("evaluate", title, call)


def _server(request: Request) -> Server:
    return request.app.state.server


async def info(request: Request) -> Response:
    s = _server(request)
    return JSONResponse({"version": __version__, "devices": [w.name.split("-", 2)[2] for w in s.jobs.workers],
                         "max_upload_mb": s.max_upload_bytes / 2**20, "sovqae_presets": list(SOVQAE_PRESETS)})


DRAIN_BYTES = 16 * 2**20


async def _discard(chunks: AsyncIterator[bytes], limit: int) -> None:
    """Read and drop up to `limit` more bytes of a refused body: a client still sending when the server answers
    and closes gets a broken pipe instead of the 413 (seen under load); past the limit the connection is dropped."""
    seen = 0
    with contextlib.suppress(ClientDisconnect):
        async for chunk in chunks:
            seen += len(chunk)
            if seen > limit:
                return


async def upload(request: Request) -> Response:
    s = _server(request)
    declared = request.headers.get("content-length")
    chunks = request.stream()
    try:
        if declared and declared.isdigit() and int(declared) > s.max_upload_bytes:
            raise TooLarge(f"the upload is larger than this server's limit of {s.max_upload_bytes / 2**20:.0f} MiB; "
                           "send a shorter clip or start the server with a larger --max-upload-mb")
        record = await receive(s.data, request.query_params.get("kind", ""), chunks, s.max_upload_bytes,
                               request.query_params.get("name", ""))
    except TooLarge:
        await _discard(chunks, DRAIN_BYTES)
        raise
    return JSONResponse(record, status_code=201)


async def upload_file(request: Request) -> Response:
    return FileResponse(_server(request).data.upload(request.path_params["id"]))


async def identities(request: Request) -> Response:
    return JSONResponse(catalog.list_identities(_server(request).data.folder("identities")))


async def identity(request: Request) -> Response:
    s = _server(request)
    path = s.identity(request.path_params["name"])
    if request.method == "DELETE":
        if path.name in s.jobs.busy_targets():
            raise InputError(f"identity {path.name!r} is being prepared; cancel that job first")
        shutil.rmtree(path)
        return JSONResponse({"deleted": path.name})
    return JSONResponse(catalog.identity_summary(path))


async def identity_crops(request: Request) -> Response:
    path = _server(request).identity(request.path_params["name"])
    return Response(catalog.crops_strip_png(path), media_type="image/png")


async def models(request: Request) -> Response:
    s = _server(request)
    return JSONResponse(catalog.list_models(s.data.folder("models"), s.jobs.busy_targets()))


async def model(request: Request) -> Response:
    s = _server(request)
    path = s.data.inside("models", request.path_params["name"], what="model")
    if request.method == "DELETE":
        if path.name in s.jobs.busy_targets():
            raise InputError(f"model {path.name!r} is training; stop it first")
        remove_path(path)
        return JSONResponse({"deleted": path.name})
    return JSONResponse({**catalog.model_summary(path, path.name in s.jobs.busy_targets()),
                         "metrics": catalog.read_metrics(path)})


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
    return JSONResponse([j.public() for j in s.jobs.list()])


def _job(request: Request) -> Job:
    job = _server(request).jobs.get(check_name(request.path_params["id"], "job id"))
    if job is None:
        raise NotFound(f"no job {request.path_params['id']!r}")
    return job


async def job(request: Request) -> Response:
    return JSONResponse(_job(request).public())


async def cancel(request: Request) -> Response:
    job = _job(request)
    # stopping may wait for a checkpoint to be saved: not on the event loop
    from starlette.concurrency import run_in_threadpool
    await run_in_threadpool(_server(request).jobs.cancel, job.id)
    return JSONResponse(job.public())


async def job_log(request: Request) -> Response:
    path = _job(request).dir / "log.txt"
    if not path.is_file():
        raise NotFound("this job has no log (it has not started, or it was cancelled)")
    return FileResponse(path, media_type="text/plain; charset=utf-8")


async def job_file(request: Request) -> Response:
    job = _job(request)
    parts = request.path_params["path"].split("/")
    out = job.dir / "out"
    path = out.joinpath(*(check_name(p, "file") for p in parts))
    if job.state != "done" or path.is_symlink() or not path.resolve().is_relative_to(out.resolve()) \
            or not path.is_file():
        raise NotFound(f"job {job.id} has no file {'/'.join(parts)!r}")
    return FileResponse(path)


async def page(request: Request) -> Response:
    response = FileResponse(STATIC / "index.html")
    token = request.query_params.get("token")
    if token:  # the page's own requests (and its <video> elements) then carry the token as a cookie
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
    return response


def _error(status: int):
    async def handler(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=status)
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
        Route("/api/uploads", upload, methods=["POST"]),
        Route("/api/uploads/{id}/file", upload_file),
        Route("/api/identities", identities),
        Route("/api/identities/{name}", identity, methods=["GET", "DELETE"]),
        Route("/api/identities/{name}/crops.png", identity_crops),
        Route("/api/models", models),
        Route("/api/models/{name}", model, methods=["GET", "DELETE"]),
        Route("/api/jobs", jobs, methods=["GET", "POST"]),
        Route("/api/jobs/{id}", job),
        Route("/api/jobs/{id}/cancel", cancel, methods=["POST"]),
        Route("/api/jobs/{id}/log", job_log),
        Route("/api/jobs/{id}/files/{path:path}", job_file),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handlers = {NotFound: _error(404), TooLarge: _error(413), LadtalkError: _error(400)}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        server.jobs.shutdown()  # stop running jobs and remove what they made

    app = Starlette(routes=routes, middleware=[Middleware(Guard)], exception_handlers=handlers, lifespan=lifespan)
    app.state.server = server
    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
