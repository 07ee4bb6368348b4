"""``instancehmr predict``: the promoted model on anyone's images and videos (``run``), on a Ray
cluster (``batch``), and exported for deployment (``export``)."""
