"""Raw network outputs to predictions: RetinaFace decoding, NMS, face alignment."""
