"""The synthetic crowd: scenes of posed synthetic bodies (scene), their depth-buffer render
(render) and exact labels (labels); the corpus itself is ``data/corpora/synthetic.py``."""
