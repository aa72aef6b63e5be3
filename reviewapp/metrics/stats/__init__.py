"""The statistics core: arrays in, numbers out. Imports no Django (docs/design.md, "Metric
definitions"), so every function here is tested against published values and benchmarked alone."""
