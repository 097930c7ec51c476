"""The backend service's client, free of bpy (tested without Blender).

Everything here may run on a background thread: it talks HTTP with urllib,
reads the token file and starts or stops a local ``gan2x serve``, and never
imports bpy. The Blender side (``session.py``) hands it plain values and
takes back plain events through a queue on the main thread.
"""
