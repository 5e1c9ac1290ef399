"""What run_load_tests.py drives: the local stack, the preflight check, suites and the Locust process."""
