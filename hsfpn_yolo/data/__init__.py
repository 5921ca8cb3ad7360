"""Datasets: the built-in synthetic tiny-object set (`synth`), the VisDrone / AI-TOD converters and tiling (`tiles`)."""
