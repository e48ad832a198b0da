"""`ladtalk` command line: each subcommand calls one public function with the same parameter names."""

from __future__ import annotations

import argparse
import sys

from ladtalk.errors import LadtalkError

EPILOG = "Run `ladtalk demo -o demo_out` for a complete example on built-in synthetic data."


def _pads(text: str) -> tuple[int, int, int, int]:
    parts = [int(p) for p in text.replace(",", " ").split()]
    if len(parts) != 4:
        raise argparse.ArgumentTypeError("pads are four integers: top bottom left right, e.g. '0 10 0 0'")
    return tuple(parts)  # type: ignore[return-value]


def _add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="detect and track the face in an identity video; write an identity folder",
                       description="Detect, track and crop the face of an identity video into an identity folder "
                       "(crops, 16 kHz audio, boxes, train/test split). Re-running is a no-op; an interrupted "
                       "run resumes.")
    p.add_argument("video_path", metavar="VIDEO", help="identity video (any container FFmpeg reads)")
    p.add_argument("-o", "--out-dir", required=True, metavar="IDENTITY_DIR", help="identity folder to write")
    p.add_argument("--size", type=int, default=256, choices=(256, 512), help="face crop size in pixels")
    p.add_argument("--fps", type=float, default=None, help="resample the video to this frame rate (default: keep)")
    p.add_argument("--detector", default="mtcnn",
                   help="'mtcnn' (offline weights from facenet-pytorch) or 's3fd:PATH' to your s3fd.pth")
    p.add_argument("--track", type=int, default=None,
                   help="index of the face track to keep when several people are visible (default: main)")
    p.add_argument("--pads", type=_pads, default=(0, 10, 0, 0), metavar="'T B L R'",
                   help="Wav2Lip-style padding of the face box in pixels (default '0 10 0 0')")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")

    def run(a):
        from ladtalk.data.prepare import prepare
        prepare(a.video_path, a.out_dir, size=a.size, fps=a.fps, detector=a.detector, track=a.track,
                pads=a.pads, device=a.device)
    p.set_defaults(run=run)


def _add_synth(sub) -> None:
    p = sub.add_parser("synth", help="render the seeded synthetic talking face (MP4 + WAV + ground truth)")
    p.add_argument("-o", "--out-dir", required=True, metavar="DIR")
    p.add_argument("--seconds", type=float, default=12.0)
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--size", type=int, default=256, help="frame size in pixels (square)")
    p.add_argument("--seed", type=int, default=0)

    def run(a):
        from ladtalk.data.synthetic import synthesize
        synthesize(a.out_dir, seconds=a.seconds, fps=a.fps, size=a.size, seed=a.seed)
    p.set_defaults(run=run)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a component: sovqae, syncnet or wav2lip")
    tsub = p.add_subparsers(dest="component", required=True)

    def common(q, data_help):
        q.add_argument("data_dirs", nargs="+", metavar="DATA_DIR", help=data_help)
        q.add_argument("-o", "--run-dir", required=True, metavar="RUN_DIR",
                       help="run folder: checkpoints, logs and the exported model (resumes if it exists)")
        q.add_argument("--preset", default=None,
                       help="preset name (src/ladtalk/configs/*.yaml: paper-256, paper-512, tiny, demo, syncnet, "
                       "syncnet-tiny, wav2lip, wav2lip-tiny) or a YAML path")
        q.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one preset value, e.g. --set train.max_steps=500 (repeatable)")
        q.add_argument("--device", default="auto")

    def refuse_run_over_inputs(a):
        # train_sovqae is being reworked elsewhere; the guard sits here for all three trainers alike
        from ladtalk.io.guard import refuse_output_over_inputs
        refuse_output_over_inputs(a.run_dir, [("training data", d) for d in a.data_dirs]
                                  + [("--syncnet weights", getattr(a, "syncnet_path", None)),
                                     ("--init weights", getattr(a, "init_path", None)),
                                     ("--wav2lip weights", getattr(a, "wav2lip_path", None))], folder=True)

    q = tsub.add_parser("sovqae", help="identity-specific Space-Optimized VQ autoencoder")
    common(q, "identity folder(s) written by `ladtalk prepare`")
    q.add_argument("--wav2lip", dest="wav2lip_path", default=None, metavar="WEIGHTS",
                   help="also learn to restore this lip-sync model's own faces: its output on the train frames, "
                   "driven by their own audio, becomes a share (train.lipsync_share, default 0.5) of the inputs, "
                   "the true frames the targets (beyond the paper; the restore-cpu preset is made for it)")

    def run_sovqae(a):
        from ladtalk.train.sovqae import train_sovqae
        refuse_run_over_inputs(a)
        train_sovqae(a.data_dirs, a.run_dir, preset=a.preset or "paper-256", overrides=a.overrides,
                     device=a.device, wav2lip_path=a.wav2lip_path)
    q.set_defaults(run=run_sovqae)

    q = tsub.add_parser("syncnet", help="the lip-sync expert (Wav2Lip's SyncNet_color)")
    common(q, "identity folders or LRS2-style dataset roots (<spk>/<vid>/{k}.jpg + audio.wav)")

    def run_syncnet(a):
        from ladtalk.train.syncnet import train_syncnet
        refuse_run_over_inputs(a)
        train_syncnet(a.data_dirs, a.run_dir, preset=a.preset or "syncnet", overrides=a.overrides,
                      device=a.device)
    q.set_defaults(run=run_syncnet)

    q = tsub.add_parser("wav2lip", help="the Wav2Lip generator (optionally with the visual-quality GAN)")
    common(q, "identity folders or LRS2-style dataset roots")
    q.add_argument("--syncnet", dest="syncnet_path", required=True,
                   help="trained expert: lipsync_expert.pth or a `train syncnet` run/model folder")
    q.add_argument("--init", dest="init_path", default=None,
                   help="start from these generator weights (wav2lip.pth or a model folder) to fine-tune")

    def run_wav2lip(a):
        from ladtalk.train.wav2lip import train_wav2lip
        refuse_run_over_inputs(a)
        train_wav2lip(a.data_dirs, a.run_dir, syncnet_path=a.syncnet_path, init_path=a.init_path,
                      preset=a.preset or "wav2lip", overrides=a.overrides, device=a.device)
    q.set_defaults(run=run_wav2lip)


def _add_analyze(sub) -> None:
    p = sub.add_parser("analyze", help="measure the paper's theory on a trained SOVQAE: d_C, gamma, L_E, NRoUB, "
                       "robustness to blur / noise / Wav2Lip-like degradation")
    p.add_argument("model_path", metavar="MODEL", help="SOVQAE model or run folder")
    p.add_argument("identity_dir", metavar="IDENTITY_DIR")
    p.add_argument("-o", "--report-dir", required=True, metavar="REPORT_DIR")
    p.add_argument("--max-frames", type=int, default=None, help="use at most this many test frames")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)

    def run(a):
        from ladtalk.analyze import analyze
        analyze(a.model_path, a.identity_dir, a.report_dir, max_frames=a.max_frames, device=a.device, seed=a.seed)
    p.set_defaults(run=run)


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="speech -> lip-synced video of the identity (Wav2Lip -> SOVQAE cascade)")
    p.add_argument("--identity", required=True, help="identity folder or a video of the person")
    p.add_argument("--audio", dest="audio_path", required=True, help="driving speech (wav, mp3, m4a, any rate)")
    p.add_argument("--wav2lip", dest="wav2lip_path", required=True,
                   help="wav2lip.pth / wav2lip_gan.pth or a `train wav2lip` model folder")
    p.add_argument("--sovqae", dest="sovqae_path", default=None, help="SOVQAE model or run folder")
    p.add_argument("--no-sovqae", action="store_true", help="plain Wav2Lip result, for comparison")
    p.add_argument("--paste", choices=("mouth", "feather", "hard"), default="mouth",
                   help="mouth (default): blend only the lower face, the rest stays the identity's own frame; "
                        "feather: the whole face box, feathered; hard: the paper's rectangle paste")
    p.add_argument("-o", "--out-path", required=True, metavar="OUT.mp4")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    p.add_argument("--device", default="auto")

    def run(a):
        from ladtalk.pipeline.generate import generate
        from ladtalk.runtime import command_started_at
        generate(a.identity, a.audio_path, a.out_path, wav2lip_path=a.wav2lip_path, sovqae_path=a.sovqae_path,
                 no_sovqae=a.no_sovqae, paste=a.paste, batch_size=a.batch_size, precision=a.precision,
                 device=a.device, started_at=command_started_at())
    p.set_defaults(run=run)


def _add_enhance(sub) -> None:
    p = sub.add_parser("enhance", help="plug-and-play: repair the faces of any talking-head video of the identity")
    p.add_argument("video_path", metavar="VIDEO")
    p.add_argument("--sovqae", dest="sovqae_path", required=True)
    p.add_argument("-o", "--out-path", required=True, metavar="OUT.mp4")
    p.add_argument("--detector", default=None,
                   help="'mtcnn' or 's3fd:PATH' (default: the one the SOVQAE's training faces were found with)")
    p.add_argument("--pads", type=_pads, default=None, metavar="'T B L R'",
                   help="face box padding (default: the pads the SOVQAE's identity was prepared with)")
    p.add_argument("--paste", choices=("feather", "mouth", "hard"), default="feather",
                   help="feather (default): the whole repaired face, feathered; mouth: the lower face only; hard: "
                        "the paper's rectangle paste")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    p.add_argument("--device", default="auto")

    def run(a):
        from ladtalk.pipeline.enhance import enhance
        from ladtalk.runtime import command_started_at
        enhance(a.video_path, a.out_path, sovqae_path=a.sovqae_path, detector=a.detector, paste=a.paste,
                batch_size=a.batch_size, precision=a.precision, device=a.device, pads=a.pads,
                started_at=command_started_at())
    p.set_defaults(run=run)


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="PSNR, SSIM, LPIPS, FID, LSE-C/D, temporal stability; JSON + report")
    p.add_argument("--pred", dest="pred_path", help="generated video")
    p.add_argument("--gt", dest="gt_path", help="ground-truth video")
    p.add_argument("--cases", dest="cases_path", help="CSV/TSV table of cases (name, pred, gt) for a batch report")
    p.add_argument("--syncnet", dest="syncnet_path", default=None, help="syncnet_v2.model for LSE-C / LSE-D")
    p.add_argument("--inception", dest="inception_path", default=None,
                   help="pt_inception-2015-12-05-6726825d.pth for FID (default: torch hub cache)")
    p.add_argument("--lse-crop", choices=("face", "frame"), default="face",
                   help="LSE on syncnet_python's face crops (default; the published protocol) or on whole frames "
                   "(reported as LSE-D_whole_frame / LSE-C_whole_frame)")
    p.add_argument("--detector", default="mtcnn", help="face detector for the LSE face crops: 'mtcnn' or 's3fd:PATH'")
    p.add_argument("--align", choices=("sliding", "frames"), default="sliding",
                   help="sliding window (the paper's) or plain frame-aligned evaluation")
    p.add_argument("-o", "--report-dir", required=True, metavar="REPORT_DIR")
    p.add_argument("--device", default="auto")

    def run(a):
        from ladtalk.evaluate import evaluate, evaluate_cases
        if a.cases_path:
            evaluate_cases(a.cases_path, a.report_dir, syncnet_path=a.syncnet_path,
                           inception_path=a.inception_path, align=a.align, device=a.device, lse_crop=a.lse_crop,
                           detector=a.detector)
        elif a.pred_path and a.gt_path:
            evaluate(a.pred_path, a.gt_path, a.report_dir, syncnet_path=a.syncnet_path,
                     inception_path=a.inception_path, align=a.align, device=a.device, lse_crop=a.lse_crop,
                     detector=a.detector)
        else:
            raise LadtalkError("give --pred and --gt, or --cases TABLE")
    p.set_defaults(run=run)


def _add_reenact(sub) -> None:
    p = sub.add_parser("reenact", help="the paper's self-reenactment protocol: drive the identity's test split by "
                       "its own audio, score Wav2Lip only and the cascade against the real frames")
    p.add_argument("identity", metavar="IDENTITY_DIR", help="prepared identity folder (its test split is used)")
    p.add_argument("--wav2lip", dest="wav2lip_path", required=True,
                   help="wav2lip.pth / wav2lip_gan.pth or a `train wav2lip` model folder")
    p.add_argument("--sovqae", dest="sovqae_path", default=None, help="SOVQAE model or run folder (the cascade row)")
    p.add_argument("-o", "--out-dir", required=True, metavar="REPORT_DIR")
    p.add_argument("--paste", choices=("mouth", "feather", "hard"), default="mouth",
                   help="the same paste for both rows (default mouth)")
    p.add_argument("--syncnet", dest="syncnet_path", default=None, help="syncnet_v2.model for LSE-C / LSE-D")
    p.add_argument("--max-frames", type=int, default=None, help="score at most this many test frames")
    p.add_argument("--no-lpips", dest="lpips", action="store_false", help="skip the perceptual distance (slow on CPU)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    p.add_argument("--device", default="auto")

    def run(a):
        from ladtalk.reenact import reenact
        reenact(a.identity, a.wav2lip_path, a.out_dir, sovqae_path=a.sovqae_path, paste=a.paste,
                syncnet_path=a.syncnet_path, device=a.device, max_frames=a.max_frames, precision=a.precision,
                lpips=a.lpips)
    p.set_defaults(run=run)


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="end to end on built-in synthetic data: synth -> prepare -> train -> generate "
                       "-> evaluate (CPU, a few minutes)")
    p.add_argument("-o", "--out-dir", default="demo_out", metavar="DIR")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)

    def run(a):
        from ladtalk.demo import demo
        demo(a.out_dir, device=a.device, seed=a.seed)
    p.set_defaults(run=run)


def _add_serve(sub) -> None:
    p = sub.add_parser("serve", help="the whole workflow in a web page and an HTTP API (needs ladtalk[serve])")
    p.add_argument("--data-dir", default="ladtalk_data", metavar="DIR",
                   help="the server's own folder: uploads, identities, models, job results")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--token", default=None, help="require this token (needed when --host is not loopback; "
                   "default: $LADTALK_SERVE_TOKEN)")
    p.add_argument("--max-upload-mb", type=float, default=512.0, help="largest upload accepted")
    p.add_argument("--device", default="auto", help="one job worker per device: cpu, cuda:0,cuda:1 or auto")

    def run(a):
        from ladtalk.serve import serve
        serve(a.data_dir, host=a.host, port=a.port, token=a.token, max_upload_mb=a.max_upload_mb, device=a.device)
    p.set_defaults(run=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ladtalk", description=__doc__, epilog=EPILOG)
    from ladtalk import __version__
    parser.add_argument("--version", action="version", version=f"ladtalk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_prepare, _add_synth, _add_train, _add_analyze, _add_generate, _add_enhance, _add_evaluate,
                _add_reenact, _add_demo, _add_serve):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except LadtalkError as e:
        print(f"ladtalk {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        again = "resume" if args.command in ("prepare", "train", "demo") else "start again"
        print(f"ladtalk {args.command}: interrupted; re-run the same command to {again}", file=sys.stderr)
        return 130
    return 0
