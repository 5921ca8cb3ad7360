"""Datasets for hsfpn_yolo; `hsfpn_yolo.data.synth` renders the built-in synthetic tiny-object set (numpy + OpenCV only)."""
