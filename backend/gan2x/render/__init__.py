"""Cameras, rays, volume rendering of an SDF and Phong shading (torch)."""
