"""Thin bpy builders, one file per concern (mesh, material, lights, camera),
assembled by ``scene.import_bundle``; ``render`` holds headless render helpers."""
