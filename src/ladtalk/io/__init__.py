"""Media and file I/O: streaming video/audio through PyAV, atomic writes."""
