"""rca: AI-assisted root-cause analysis for microservice systems.

Importing this package is cheap: no torch, FAISS, model or store is loaded here.
"""

__version__ = "0.1.0"
