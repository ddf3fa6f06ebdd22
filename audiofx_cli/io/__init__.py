"""File I/O: audio through soundfile/libsndfile, atomic writes."""
