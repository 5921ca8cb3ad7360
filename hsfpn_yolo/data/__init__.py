"""Datasets: the built-in synthetic tiny-object set (`synth`) and the VisDrone / AI-TOD converters."""
