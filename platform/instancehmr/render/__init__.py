"""Drawing meshes: a ray-casting mesh renderer (Embree) and predicted meshes over images."""
