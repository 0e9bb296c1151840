"""K2's benchmarks: each one measures K2 beside the physical limit measured in the same run on the
same data, and reports the ratio. Run ``python -m benchmarks.run``; results go to
``docs/benchmarks.md``. These are not tests: they print and write numbers and never fail on them.
"""
