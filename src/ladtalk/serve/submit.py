"""Turning a request into a job with the CLI's parameters. Inputs are named, never given as paths: identities and
models by their folder name, files by an upload id or by a finished job's result as "JOB_ID/FILE" (so a video the
server made is enhanced or evaluated in place)."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from ladtalk.errors import InputError
from ladtalk.face import DEFAULT_PADS
from ladtalk.presets import preset_names
from ladtalk.pretrained import BUILTIN
from ladtalk.pretrained import resolve as resolve_builtin
from ladtalk.serve.catalog import SETTINGS  # in a run folder: its train request, what 'resume' submits
from ladtalk.serve.jobs import LIVE, Job, JobManager
from ladtalk.serve.paths import DataDir, NotFound, check_choice, check_name, new_id, read_json, write_json

OVERRIDE_RE = re.compile(r"train\.[a-z_]+=[A-Za-z0-9_.+-]{1,32}")
COMPONENTS = {  # component -> (the kind its checkpoints record, what the page calls it)
    "sovqae": ("sovqae", "SOVQAE"), "syncnet": ("syncnet_expert", "lip-sync expert"),
    "wav2lip": ("wav2lip", "Wav2Lip generator"), "lipsync": ("wav2lip", "lip-sync base (expert + generator)")}


def presets() -> dict[str, list[str]]:
    """The presets each trainer takes, as the CLI offers them; `lipsync` names the syncnet-X + wav2lip-X pairs."""
    out = {m: preset_names(m) for m in ("sovqae", "syncnet", "wav2lip")}
    out["lipsync"] = sorted((n[8:] for n in out["syncnet"] if f"wav2lip-{n[8:]}" in out["wav2lip"]), reverse=True)
    return out


def _request(body: dict) -> dict:
    """What of a request is kept with its job (and submitted again by 'run again' / 'resume')."""
    plain = (str, int, float, bool, type(None))
    return {k: v for k, v in body.items()
            if isinstance(v, plain) or (isinstance(v, list) and all(isinstance(x, plain) for x in v))}


class Server:
    """The state behind the routes: the data folder, the job queue and the settings."""

    def __init__(self, data: DataDir, jobs: JobManager, max_upload_bytes: int, token: str | None,
                 loopback_only: bool = True):
        self.data, self.jobs, self.max_upload_bytes, self.token = data, jobs, max_upload_bytes, token
        self.loopback_only = loopback_only  # then only loopback Host headers: no DNS-rebinding way in

    # ---- names from requests -> checked paths

    def identity(self, name: object) -> Path:
        path = self.data.inside("identities", name, what="identity")
        if not (path / "identity.json").is_file():
            raise NotFound(f"no identity {name!r}; prepare one first")
        return path

    def model(self, name: object, what: str = "model", part: str | None = None) -> Path:
        """A folder under models/, else an uploaded weight file; for a lip-sync `part` also 'builtin:NAME' (shipped)."""
        if part and isinstance(name, str) and name.startswith(BUILTIN + ":"):
            return Path(resolve_builtin(name, part))
        with contextlib.suppress(NotFound):  # an invalid name is refused here, as a `what`
            return self.data.inside("models", name, what=what)
        with contextlib.suppress(NotFound):
            return self.data.upload(name)
        raise NotFound(f"no {what} {name!r}: give a name from GET /api/models or the id of an uploaded weight file")

    def job(self, job_id: object) -> Job:
        if (job := self.jobs.get(check_name(job_id, "job id"))) is None:
            raise NotFound(f"no job {job_id!r}")
        return job

    def job_file(self, job_id: object, rel: str) -> Path:
        """A result file of a finished job, e.g. ("0123abcd...", "ladtalk.mp4")."""
        job = self.job(job_id)
        path = (job.dir / "out").joinpath(*(check_name(p, "file") for p in rel.split("/")))
        if job.state != "done" or rel not in job.files():  # the files it lists: no symlink, nothing hidden
            raise NotFound(f"job {job.id} has no file {rel!r}")
        return path

    def media(self, ref: object, what: str) -> Path:
        """An upload id, or "JOB_ID/FILE" for a result of a finished job."""
        if isinstance(ref, str) and "/" in ref:
            return self.job_file(*ref.split("/", 1))
        if not ref:
            raise InputError(f"choose the {what}: an upload id, or JOB_ID/FILE for a result of a finished job")
        return self.data.upload(ref)

    def media_name(self, path: Path) -> str:
        """How a title names an input file (never a server path)."""
        if path.is_relative_to(self.data.folder("jobs")):
            return f"{path.name} of job {path.relative_to(self.data.folder('jobs')).parts[0][:8]}"
        return self.data.upload_record(path).get("name") or path.name  # for titles only, never a path

    def in_use(self, value: str) -> bool:
        """Whether a queued or running job reads `value` (a name, an upload id, or a job's results)."""
        return any(v == value or (isinstance(v, str) and v.startswith(value + "/"))
                   for job in self.jobs.list() if job.state in LIVE for v in job.request.values())

    # ---- job submission: the same parameters as the CLI's

    def submit(self, body: dict) -> Job:
        makers = {"prepare": self._prepare, "train": self._train, "generate": self._generate,
                  "enhance": self._enhance, "analyze": self._analyze, "evaluate": self._evaluate}
        return makers[check_choice(body.get("kind"), makers, "job kind")](body, _request(body))

    def again(self, job: Job) -> Job:
        """Submit a finished job's request again (an interrupted training resumes from its checkpoint)."""
        if job.state in LIVE:
            raise InputError(f"job {job.id} is still {job.state}")
        return self.submit(job.request)

    def resume(self, name: object) -> Job:
        """Continue a training run with the settings it was started with (its serve-train.json)."""
        run = self.data.inside("models", name, what="model")
        if not isinstance(body := read_json(run / SETTINGS), dict):
            raise InputError(f"model {run.name!r} was not trained from this page, so its settings are unknown; "
                             "start it from the training form with the same preset and steps")
        return self.submit(body)

    def _pads(self, body: dict) -> list[int]:
        pads = body.get("pads", list(DEFAULT_PADS))
        if not (isinstance(pads, list) and len(pads) == 4 and all(isinstance(p, int) for p in pads)):
            raise InputError("pads are four integers: top bottom left right, e.g. [0, 10, 0, 0]")
        return pads

    def _prepare(self, body: dict, request: dict) -> Job:
        name = check_name(body.get("name"), "identity")
        if (self.data.folder("identities") / name).exists() or name in self.jobs.busy_targets():
            raise InputError(f"identity {name!r} already exists or is being made; choose another name or delete it")
        size = check_choice(body.get("size", 256), (256, 512), "size")
        call = {"name": name, "size": size, "pads": self._pads(body)}
        owned = []
        if body.get("synthetic"):
            seconds = body.get("seconds", 8.0)
            if not isinstance(seconds, (int, float)) or not 2 <= seconds <= 60:
                raise InputError(f"seconds of the synthetic identity must be within 2 to 60, got {seconds!r}")
            synthetic_path = self.data.folder("uploads") / f"{new_id()}.mp4"
            call.update(video_path=None, synthetic_seconds=float(seconds), synthetic_path=str(synthetic_path))
            owned += [synthetic_path, synthetic_path.with_name(f".{synthetic_path.stem}.json")]
            title = f"prepare the built-in synthetic identity as '{name}'"
        else:
            video = self.media(body.get("upload"), "video of the person")
            call["video_path"] = str(video)
            title = f"prepare '{name}' from {self.media_name(video)}"
        return self.jobs.submit("prepare", title, call, request=request, out="identity", owned=owned, targets=[name],
                                moves=[("identity", self.data.folder("identities") / name)])

    def _train_run(self, name: str, component: str) -> tuple[Path, bool]:
        """The run folder of `name` and whether it already holds checkpoints of this component's kind."""
        run_dir = self.data.folder("models") / name
        last = run_dir / "checkpoints" / "last" / "config.json"
        if not run_dir.exists() or (not last.is_file() and (run_dir / SETTINGS).is_file()):
            return run_dir, False
        kind, label = COMPONENTS[component]
        if (read_json(last) or {}).get("kind") != kind:
            raise InputError(f"model {name!r} exists and is not a {label} training run; choose another name")
        return run_dir, True

    def _train(self, body: dict, request: dict) -> Job:
        ident = self.identity(body.get("identity"))
        component = check_choice(body.get("component", "sovqae"), COMPONENTS, "component")
        name = check_name(body.get("name"), "model")
        names = [name, check_name(f"{name}-expert", "model")] if component == "lipsync" else [name]
        if busy := self.jobs.busy_targets() & set(names):
            raise InputError(f"model {sorted(busy)[0]!r} is training already; stop it first")
        default = "tiny" if component in ("sovqae", "lipsync") else f"{component}-tiny"
        preset = check_choice(body.get("preset", default), presets()[component], f"a {component} preset")
        overrides = body.get("overrides", [])
        if not isinstance(overrides, list) or not all(isinstance(o, str) and OVERRIDE_RE.fullmatch(o)
                                                      for o in overrides):
            raise InputError("overrides are a list of 'train.KEY=VALUE' strings, e.g. ['train.max_steps=200']")
        runs = [self._train_run(n, "syncnet" if n != name else component) for n in names]  # [(folder, resumed)]
        call = {"identity_dir": str(ident), "run_dir": str(runs[0][0]), "component": component, "preset": preset,
                "overrides": overrides}
        if component == "lipsync":
            call.update(preset=f"wav2lip-{preset}", expert_dir=str(runs[1][0]), expert_preset=f"syncnet-{preset}")
        if component == "sovqae" and body.get("wav2lip"):
            call["wav2lip_path"] = str(self.model(body["wav2lip"], "lip-sync model", "wav2lip"))
        if component == "wav2lip":
            call["syncnet_path"] = str(self.model(body.get("syncnet"), "lip-sync expert", "syncnet"))
        for d, _ in runs:  # what 'resume' submits again, whatever the form holds by then
            d.mkdir(parents=True, exist_ok=True)
            write_json(d / SETTINGS, {**request, "preset": preset, "component": component})
        verb = "resume" if runs[0][1] else "train"
        title = f"{verb} {COMPONENTS[component][1]} '{name}' on '{ident.name}' ({preset})"
        return self.jobs.submit("train", title, call, request=request, out=None, targets=names,
                                scrub=[d for d, _ in runs], fresh_runs=[d for d, resumed in runs if not resumed])

    def _generate(self, body: dict, request: dict) -> Job:
        ident = self.identity(body.get("identity"))
        audio = self.media(body.get("audio"), "driving audio")
        wav2lip = self.model(body.get("wav2lip"), "lip-sync model", "wav2lip")
        sovqae = self.model(body["sovqae"], "SOVQAE") if body.get("sovqae") else None
        paste = check_choice(body.get("paste", "mouth"), ("mouth", "feather", "hard"), "paste")  # the CLI's default
        temporal = body.get("temporal_filter", False)
        if not isinstance(temporal, bool):
            raise InputError(f"temporal_filter must be true or false, got {temporal!r}")
        call = {"identity_dir": str(ident), "audio_path": str(audio), "wav2lip_path": str(wav2lip),
                "sovqae_path": str(sovqae) if sovqae else None, "paste": paste, "temporal_filter": temporal}
        return self.jobs.submit("generate", f"generate '{ident.name}' speaking {self.media_name(audio)}", call,
                                request=request)

    def _enhance(self, body: dict, request: dict) -> Job:
        video = self.media(body.get("video"), "video to enhance")
        sovqae = self.model(body.get("sovqae"), "SOVQAE")
        call = {"video_path": str(video), "sovqae_path": str(sovqae), "pads": self._pads(body)}
        return self.jobs.submit("enhance", f"enhance {self.media_name(video)} with '{sovqae.name}'", call,
                                request=request)

    def _analyze(self, body: dict, request: dict) -> Job:
        sovqae = self.model(body.get("model"), "SOVQAE")
        ident = self.identity(body.get("identity"))
        max_frames = body.get("max_frames", 64)
        if not isinstance(max_frames, int) or max_frames < 1:
            raise InputError(f"max_frames must be a positive integer, got {max_frames!r}")
        call = {"model_path": str(sovqae), "identity_dir": str(ident), "max_frames": max_frames}
        return self.jobs.submit("analyze", f"analyze '{sovqae.name}' on '{ident.name}'", call, request=request)

    def _evaluate(self, body: dict, request: dict) -> Job:
        pred, gt = self.media(body.get("pred"), "generated video"), self.media(body.get("gt"), "ground truth")
        align = check_choice(body.get("align", "sliding"), ("sliding", "frames"), "align")
        max_frames = body.get("max_frames")
        if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 1):
            raise InputError(f"max_frames must be a positive integer or null (all frames), got {max_frames!r}")
        call = {"pred_path": str(pred), "gt_path": str(gt), "align": align, "max_frames": max_frames}
        title = f"evaluate {self.media_name(pred)} against {self.media_name(gt)}"
        return self.jobs.submit("evaluate", title, call, request=request)
