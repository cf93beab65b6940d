"""`edgeloop collect`: labelled recordings from a board into the trainer's dataset layout.

start (the board options, the sensor config, the twin on the virtual board) -> board (the
collect script over the one Transport: INFO, STREAM, CAPTURE; wire is its frames) -> budget
(can the line carry the stream, or burst into RAM) -> session / recorder (contiguous
recordings by sequence number, or none) -> dataset (OUT/<label>/*.csv + .json, edgeloop.toml).
interactive is the live view and its keys; field pulls a deployed app's kept windows.
"""
