"""K2's benchmarks: each one measures K2 beside the physical limit measured in the same run on the
same data, and reports the ratio. Run ``python -m benchmarks.run``; results go to
``docs/benchmarks.md``. These are not tests: they print and write numbers and never fail on them.
"""

# K2 first, before anything imports numpy: its process settings (numpy's huge-page advice, see
# k2/__init__.py) then hold for K2 and for the limits measured beside it in the same process.
import k2 as _k2  # noqa: F401
