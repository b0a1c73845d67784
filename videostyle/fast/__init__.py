"""The feed-forward engine: Magenta's arbitrary-style network on onnxruntime, torch or a compiled package."""
