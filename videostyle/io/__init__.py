"""Files in and out: decoding and probing, muxing, still images, durable writes, the work folder."""
