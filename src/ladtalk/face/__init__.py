"""Faces in frames: detect.py (Detection, FaceDetector, make_detector), mtcnn.py, s3fd.py, track.py, crop.py."""
