"""An OpenRouter simulator for local runs, tests and benchmarks."""
