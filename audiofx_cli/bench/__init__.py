"""`audiofx bench`: every backend side by side on the same signal, in one run.

suites.py    what is filtered (api, iir, fir, chain, file) and how the filters are designed
backends.py  who filters it (audiofx, scipy, scipy-sos, scipy-oa, torchaudio, torchfx) and
             the registry new backends join (`register`)
files.py     the `file` suite: decode + encode alone vs the whole `process` path
runner.py    timing (warm-up, repeats, CUDA sync), peak memory, error vs a float64 reference
report.py    rich table and CSV;  plot.py  throughput plots (matplotlib, optional)
"""
