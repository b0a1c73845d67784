"""Render jobs: the frame pipeline and its threads, resume, outputs, parallel segments, batches."""
