"""Figures and images built from numpy arrays (no streamlit, no model).

pandas is imported here, once, before any figure is built. Plotly's validators look pandas up in ``sys.modules``
without taking the import lock; while another thread is still importing pandas (the UMAP warm-up's import pulls
it in), a figure built on a page thread then meets a half-initialised module ("partially initialized module
'pandas' has no attribute 'Series'", seen in the tests). Importing it with this package makes every figure builder
wait for a complete pandas under Python's import lock. It costs about 0.2 s once per process.
"""

import pandas  # noqa: F401 - see the docstring
