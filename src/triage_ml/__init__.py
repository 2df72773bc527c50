"""triage-ml: workflow-orchestrated retraining for support-ticket triage.

Importing the package does nothing but define names: no I/O, no logging
setup, no tracking URIs. The pyfunc model ships this package inside itself,
so it must stay importable with only the model's own requirements.
"""

__version__ = "0.1.0"
