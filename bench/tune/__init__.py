"""`invoke tune`: which NUM_PARALLEL to set, and how many concurrent users it serves within SLOs.

For each NUM_PARALLEL candidate the farm launcher restarts the backend with that setting, then a
bracketing search over closed-loop streaming users (the bench's locust machinery and prompt
sets) finds the largest count whose TTFT p95 and TPOT p95 meet the SLOs, with bootstrap CIs.
"""
