"""Incident knowledge base: past incidents, their embeddings, a FAISS index, feedback.

Nothing heavy is imported here: torch, sentence-transformers and FAISS load inside
the functions that need them.
"""
