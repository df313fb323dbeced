"""Calibration: fit the simulator's timing model to a real backend, and check the fit.

`python -m bench.calibrate` (`invoke calibrate`) runs a designed probe set against a backend,
fits `farm.sim.timing`'s parameters and writes a profile (`farm.sim.profile`); with
`--validate FILE` it runs a held-out workload on the backend and on the profile's twin.
"""
