"""Benchmarks: speed and memory (`speed`), accuracy on tiny objects (`accuracy`) and their plots (`plots`)."""
