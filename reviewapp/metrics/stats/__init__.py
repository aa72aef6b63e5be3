"""The statistics core: arrays in, numbers out. Imports no Django (DESIGN.md, Metrics),
so every function here is tested against published values and benchmarked alone."""
