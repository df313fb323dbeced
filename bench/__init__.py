"""The benchmark: locust-driven parallel streams against the farm, with pandas reports."""
