"""videostyle: paint images and videos in the style of an artwork."""

__version__ = "0.1.0"
