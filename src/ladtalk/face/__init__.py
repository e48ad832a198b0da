"""Faces in frames: detect.py (Detection, FaceDetector, make_detector), mtcnn.py, s3fd.py, track.py, crop.py."""

DEFAULT_PADS = (0, 10, 0, 0)  # Wav2Lip inference.py's default --pads, in pixels (top, bottom, left, right)
