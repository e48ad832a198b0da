"""Faces in frames: detect.py (Detection, FaceDetector, make_detector), mtcnn.py, s3fd.py, track.py, crop.py."""

from ladtalk.errors import InputError

DEFAULT_PADS = (0, 10, 0, 0)  # Wav2Lip inference.py's default --pads, in pixels (top, bottom, left, right)


def check_pads(pads, frame_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Four integer pads (top, bottom, left, right), none larger than the frame, or an InputError."""
    if len(pads) != 4 or any(isinstance(p, float) and not p.is_integer() for p in pads):
        raise InputError(f"pads must be four integers (top, bottom, left, right), got {pads!r}")
    if any(abs(int(p)) > max(frame_size) for p in pads):
        raise InputError(f"pads {tuple(pads)} reach beyond a {frame_size[0]}x{frame_size[1]} frame; pads are a few "
                         "pixels around the face box (Wav2Lip's default is '0 10 0 0')")
    return tuple(int(p) for p in pads)  # type: ignore[return-value]
