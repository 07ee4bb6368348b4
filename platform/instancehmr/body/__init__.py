"""SMPL body model: safe loading of real model files and the embedded synthetic body."""
